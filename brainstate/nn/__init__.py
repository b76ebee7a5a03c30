"""Neural-network building blocks: ``Module``, ``Dynamics``, delays, layers, initializers.

Each private module lists its public names in ``__all__``; this package re-exports them.
"""

from brainstate.nn._collective_ops import (
    MAX_ORDER,
    assign_state_values,
    call_all_fns,
    call_order,
    init_all_states,
    reset_all_states,
    vmap_call_all_fns,
    vmap_init_all_states,
    vmap_reset_all_states,
)
from brainstate.nn._dynamics import (
    Dynamics,
    OutputDelayAt,
    Prefetch,
    PrefetchDelay,
    PrefetchDelayAt,
    init_maybe_prefetch,
    not_receive_update_input,
    not_receive_update_output,
    receive_update_input,
    receive_update_output,
)
from brainstate.nn._exp_euler import exp_euler_step
from brainstate.nn._module import Module
from brainstate.nn._param import Const, Param
from brainstate.nn._regularization import (
    BetaReg,
    CauchyReg,
    ChainedReg,
    DirichletReg,
    ElasticNetReg,
    EntropyReg,
    ExponentialReg,
    GammaReg,
    GaussianReg,
    GroupLassoReg,
    HorseshoeReg,
    HuberReg,
    InverseGammaReg,
    L1Reg,
    L2Reg,
    LogNormalReg,
    LogUniformReg,
    MaxNormReg,
    OrthogonalReg,
    Regularization,
    SpectralNormReg,
    SpikeAndSlabReg,
    StudentTReg,
    TotalVariationReg,
    UniformReg,
)
from brainstate.nn import init
from brainstate.nn import _activations, _common, _delay, _dropout, _elementwise, _event, _hidata
from brainstate.nn import _linear, _monitor, _rnns, _utils
from brainstate.nn._activations import *  # noqa: F401,F403
from brainstate.nn._common import *  # noqa: F401,F403
from brainstate.nn._delay import *  # noqa: F401,F403
from brainstate.nn._dropout import *  # noqa: F401,F403
from brainstate.nn._elementwise import *  # noqa: F401,F403
from brainstate.nn._event import *  # noqa: F401,F403
from brainstate.nn._hidata import *  # noqa: F401,F403
from brainstate.nn._linear import *  # noqa: F401,F403
from brainstate.nn._monitor import *  # noqa: F401,F403
from brainstate.nn._rnns import *  # noqa: F401,F403
from brainstate.nn._utils import *  # noqa: F401,F403
from brainstate.nn._constraints import (
    AffineT,
    ChainT,
    ClipT,
    ExpT,
    IdentityT,
    LogT,
    MaskedT,
    NegativeT,
    NegSoftplusT,
    OrderedT,
    PositiveT,
    PowerT,
    ReluT,
    ScaledSigmoidT,
    SigmoidT,
    SimplexT,
    SoftplusT,
    SoftsignT,
    TanhT,
    Transform,
    UnitVectorT,
    save_exp,
)

__all__ = [
    "Module",
    "Dynamics",
    "Prefetch",
    "PrefetchDelay",
    "PrefetchDelayAt",
    "OutputDelayAt",
    "init_maybe_prefetch",
    "receive_update_output",
    "not_receive_update_output",
    "receive_update_input",
    "not_receive_update_input",
    "MAX_ORDER",
    "call_order",
    "call_all_fns",
    "vmap_call_all_fns",
    "init_all_states",
    "vmap_init_all_states",
    "reset_all_states",
    "vmap_reset_all_states",
    "assign_state_values",
    "exp_euler_step",
    "Transform",
    "IdentityT",
    "SoftplusT",
    "NegSoftplusT",
    "ExpT",
    "LogT",
    "SigmoidT",
    "ScaledSigmoidT",
    "TanhT",
    "SoftsignT",
    "ClipT",
    "AffineT",
    "ChainT",
    "MaskedT",
    "ReluT",
    "PositiveT",
    "NegativeT",
    "PowerT",
    "OrderedT",
    "SimplexT",
    "UnitVectorT",
    "save_exp",
    "Param",
    "Const",
    "Regularization",
    "L1Reg",
    "L2Reg",
    "GaussianReg",
    "ElasticNetReg",
    "HuberReg",
    "ChainedReg",
    "GroupLassoReg",
    "TotalVariationReg",
    "MaxNormReg",
    "EntropyReg",
    "OrthogonalReg",
    "SpectralNormReg",
    "StudentTReg",
    "CauchyReg",
    "UniformReg",
    "LogNormalReg",
    "ExponentialReg",
    "GammaReg",
    "BetaReg",
    "HorseshoeReg",
    "InverseGammaReg",
    "LogUniformReg",
    "SpikeAndSlabReg",
    "DirichletReg",
]
__all__ += ["init"]
for _m in (_activations, _common, _delay, _dropout, _elementwise, _event, _hidata, _linear,
           _monitor, _rnns, _utils):
    __all__ += _m.__all__
del _m
