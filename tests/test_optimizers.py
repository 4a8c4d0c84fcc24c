"""make_optimizer builds what train.optimizer names, with the config's lr, betas and weight decay (mutation
testing showed no test looked at any of them)."""
import pytest
import torch

from tunesmith.errors import TunesmithError
from tunesmith.training.objectives import make_optimizer


@pytest.mark.parametrize("name,cls", [("adam", torch.optim.Adam), ("ADAMW", torch.optim.AdamW),
                                      ("rmsprop", torch.optim.RMSprop), ("Sgd", torch.optim.SGD)])
def test_each_optimizer_gets_the_configured_hyperparameters(name, cls):
    p = [torch.nn.Parameter(torch.zeros(3))]
    opt = make_optimizer(name, p, 0.0125, [0.5, 0.9], 0.003)
    assert type(opt) is cls
    g = opt.param_groups[0]
    assert g["lr"] == 0.0125 and g["weight_decay"] == 0.003 and g["params"][0] is p[0]
    if cls in (torch.optim.Adam, torch.optim.AdamW):
        assert g["betas"] == (0.5, 0.9)
    if cls is torch.optim.SGD:
        assert g["momentum"] == 0.9


def test_unknown_optimizer_is_a_one_line_error_naming_the_choices():
    with pytest.raises(TunesmithError, match=r"unknown train.optimizer 'lion'; use adam, adamw, rmsprop or sgd"):
        make_optimizer("lion", [torch.nn.Parameter(torch.zeros(1))], 0.1, [0.9, 0.99], 0.0)
