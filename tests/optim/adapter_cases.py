"""What the adapter tests share: the cases (our rule, its options under torch's names, torch's class),
the small network and data they train, and the comparison."""

import torch

DTYPE = torch.float64
RTOL = 1e-12
STEPS = 100

# case -> (our rule, options under torch's names, torch class, torch-only options)
CASES = {
    "gd": ("gd", {"lr": 0.05, "weight_decay": 0.01}, torch.optim.SGD, {}),
    "momentum": ("momentum", {"lr": 0.02, "momentum": 0.9}, torch.optim.SGD, {}),
    "momentum-wd": ("momentum", {"lr": 0.02, "momentum": 0.5, "weight_decay": 0.05}, torch.optim.SGD, {}),
    "nesterov": (
        "nesterov",
        {"lr": 0.02, "momentum": 0.8, "weight_decay": 0.01},
        torch.optim.SGD,
        {"nesterov": True},
    ),
    "adagrad": ("adagrad", {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.01}, torch.optim.Adagrad, {}),
    "rmsprop": ("rmsprop", {"lr": 0.003, "weight_decay": 0.01}, torch.optim.RMSprop, {}),
    "rmsprop-momentum": ("rmsprop", {"lr": 0.002, "momentum": 0.5, "alpha": 0.95}, torch.optim.RMSprop, {}),
    "rmsprop-centered": (
        "rmsprop",
        {"lr": 0.001, "momentum": 0.5, "centered": True, "eps": 1e-6},
        torch.optim.RMSprop,
        {},
    ),
    "adam": ("adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.01}, torch.optim.Adam, {}),
    "adamw": ("adamw", {"lr": 0.01, "weight_decay": 0.1}, torch.optim.AdamW, {}),
    "amsgrad": ("amsgrad", {"lr": 0.01, "betas": (0.9, 0.95)}, torch.optim.Adam, {"amsgrad": True}),
}


def data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(32, 4, generator=generator, dtype=DTYPE)
    targets = torch.sin(inputs @ torch.randn(4, 1, generator=generator, dtype=DTYPE))
    return inputs, targets


def network(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8, dtype=DTYPE), torch.nn.Tanh(), torch.nn.Linear(8, 1, dtype=DTYPE)
    )


def loss_of(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(model(inputs), targets)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, inputs, targets) -> float:
    opt.zero_grad()
    loss = loss_of(model, inputs, targets)
    loss.backward()
    opt.step()
    return float(loss.detach())


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max|ours - ref| / max|ref|, norm-wise over the tensor."""
    return (ours - ref).abs().max().item() / ref.abs().max().item()
