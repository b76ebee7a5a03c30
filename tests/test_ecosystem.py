"""The ecosystem's own code runs on this package: braintools, brainpy.state and brainpy, unchanged.

The packages are installed from the registry with ``--no-deps`` on top of this brainstate
(``.ci/run`` does it; see the README's "Using the ecosystem"). Where one is absent its tests are
skipped with the reason, except under ``CI=true``, where a missing package fails the run instead
of hiding the check.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate

# brainpy.state is published as the ``brainpy.state`` namespace of brainpy; importing its
# implementation package directly is allowed under pytest and with this variable.
os.environ.setdefault("BRAINPY_STATE_ALLOW_DIRECT_IMPORT", "1")

_PINNED = {"braintools": "0.3.0", "brainpy-state": "0.1.0", "brainpy": "2.8.2"}


@pytest.fixture(autouse=True)
def _jax_default_promotion():
    # The suite runs with strict dtype promotion to catch our own implicit casts; the
    # ecosystem's code (and optax under it) is written for JAX's default, as its users run it.
    with jax.numpy_dtype_promotion("standard"):
        yield


def _need(module: str, dist: str | None = None):
    """Import ``module`` or skip (fail under CI) naming the distribution to install."""
    dist = dist or module
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if isinstance(exc, ModuleNotFoundError) and exc.name in (module, top):
            reason = (f"{dist} is not installed: pip install -r requirements/ecosystem.txt && "
                      f"pip install --no-deps {dist}=={_PINNED.get(dist, '')}".rstrip("="))
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        raise  # installed but broken: that is a failure of ours to report, never a skip


def test_this_version_satisfies_what_the_ecosystem_requires():
    # pip keeps an installed distribution that satisfies a requirement, so a plain
    # `pip install braintools brainpy-state` keeps this package only if its version does.
    from packaging.requirements import Requirement

    ours = metadata.version("brainstate")
    assert ours == brainstate.__version__
    checked = []
    for dist in ("braintools", "brainpy-state", "brainpy"):
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.name == "brainstate" and not req.marker:
                assert req.specifier.contains(ours, prereleases=True), (
                    f"{dist} requires {req}, which brainstate {ours} does not satisfy: pip "
                    "would replace this package with upstream's")
                checked.append(dist)
    if not checked:
        _need("braintools")  # skips (or fails under CI) with the install hint
    assert checked


class TestBraintools:
    def test_imports_and_its_optimizer_trains_a_param_collection(self):
        braintools = _need("braintools")

        class Net(brainstate.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = brainstate.ParamState(jnp.zeros((3, 2)))
                self.b = brainstate.ParamState(jnp.zeros(2))
                self.seen = brainstate.ShortTermState(jnp.zeros(()))  # not optimised

            def __call__(self, x):
                return x @ self.w.value + self.b.value

        net = Net()
        params = net.states(brainstate.ParamState)
        opt = braintools.optim.Adam(lr=0.1)
        opt.register_trainable_weights(params)

        x = jnp.asarray(np.random.default_rng(0).normal(size=(16, 3)), jnp.float32)
        y = x @ jnp.array([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]], jnp.float32) + 0.5

        def loss():
            return jnp.mean((net(x) - y) ** 2)

        @brainstate.transform.jit
        def train_step():
            grads, value = brainstate.transform.grad(loss, grad_states=params,
                                                     return_value=True)()
            opt.update(grads)
            return value

        losses = [float(train_step()) for _ in range(60)]
        assert losses[-1] < 0.1 * losses[0]
        assert float(net.seen.value) == 0.0


    def test_latency_encoder_through_the_deprecated_functional_module(self):
        braintools = _need("braintools")
        u = _need("brainunit")
        # braintools still calls brainstate.functional.one_hot (an old name, kept with a warning)
        with brainstate.environ.context(dt=0.1 * u.ms):
            enc = braintools.LatencyEncoder(method="linear", tau=1.0 * u.ms)
            with pytest.warns(DeprecationWarning, match="brainstate.functional.one_hot"):
                spikes = enc(jnp.array([0.0, 0.25, 1.0]))
        # spike time (tau - dt) * (1 - x): steps 9, 6.75 -> 7, and 0; one spike each
        assert spikes.shape == (10, 3)
        np.testing.assert_array_equal(np.asarray(spikes.argmax(0)), [9, 7, 0])
        np.testing.assert_array_equal(np.asarray(spikes.sum(0)), [1, 1, 1])


class TestBrainpyState:
    def test_lif_population_driven_by_poisson_input_in_for_loop(self):
        u = _need("brainunit")
        braintools = _need("braintools")
        bp = _need("brainpy_state", "brainpy-state")

        brainstate.random.seed(42)
        n, steps = 100, 100
        with brainstate.environ.context(dt=0.1 * u.ms):
            neurons = bp.LIF(n, tau=10.0 * u.ms, V_th=-50.0 * u.mV, V_reset=-60.0 * u.mV,
                             V_rest=-60.0 * u.mV,
                             V_initializer=braintools.init.Constant(-60.0 * u.mV))
            drive = bp.PoissonInput(neurons.prefetch("V"), indices=None, num_input=400,
                                    freq=50.0 * u.Hz, weight=1.0 * u.mV)
            brainstate.nn.init_all_states(neurons)

            def step(i):
                with brainstate.environ.context(i=i, t=i * brainstate.environ.get_dt()):
                    drive.update()
                    return neurons(0.0 * u.mA)

            spikes = brainstate.transform.for_loop(step, jnp.arange(steps))

        assert spikes.shape == (steps, n)
        v = neurons.V.value
        assert u.get_unit(v) == u.mV
        assert bool(jnp.all(jnp.isfinite(u.get_mantissa(v))))
        # 400 inputs at 50 Hz add ~2 mV per 0.1 ms step against a 10 ms leak: the population
        # crosses -50 mV within the 10 ms and fires, and resets below threshold.
        assert int(jnp.sum(spikes)) > 0
        assert bool(jnp.all(u.get_mantissa(v.to(u.mV)) < -50.0 + 1e-3))


    @staticmethod
    def _projection_run(bp, braintools, u, delay):
        """A spiking LIF population projecting through brainpy.state's AlignPostProj (dense
        ``brainstate.nn.Linear``, ``Expon`` synapse, ``COBA`` output) onto another one."""
        lif = dict(V_th=-50.0 * u.mV, V_reset=-60.0 * u.mV, V_rest=-60.0 * u.mV, tau=20.0 * u.ms)
        with brainstate.environ.context(dt=0.1 * u.ms):
            # -45 mV is above threshold: the presynaptic neurons start with a spike
            pre = bp.LIF(8, V_initializer=braintools.init.Constant(-45.0 * u.mV), **lif)
            post = bp.LIF(4, V_initializer=braintools.init.Constant(-60.0 * u.mV), **lif)
            comm = brainstate.nn.Linear(8, 4, w_init=braintools.init.Constant(0.1 * u.mS),
                                        b_init=None)
            proj = bp.AlignPostProj(comm=comm, syn=bp.Expon.desc(4, tau=5.0 * u.ms),
                                    out=bp.COBA.desc(E=0.0 * u.mV), post=post, delay=delay)
            net = brainstate.nn.Module()
            net.pre, net.post, net.proj = pre, post, proj
            brainstate.nn.init_all_states(net)

            @brainstate.transform.jit
            def run(steps):
                def step(i):
                    proj(pre.get_spike() != 0.0)
                    post(0.0 * u.mA)
                    pre(0.0 * u.mA)
                    return proj.syn.g.value

                return brainstate.transform.for_loop(step, steps)

            return run(jnp.arange(30)), post.V.value

    def test_lif_expon_coba_projection_with_and_without_delay(self):
        u = _need("brainunit")
        braintools = _need("braintools")
        bp = _need("brainpy_state", "brainpy-state")

        arrivals = {}
        for delay in (None, 1.0 * u.ms):
            g, v = self._projection_run(bp, braintools, u, delay)
            assert u.get_unit(g) == u.mS
            g = np.asarray(u.get_mantissa(g))
            arrivals[delay is not None] = int(np.nonzero(g.any(1))[0][0])
            assert (g[arrivals[delay is not None]:] > 0).all()
            # an excitatory conductance (E = 0 mV) depolarises the resting postsynaptic cells
            assert bool(jnp.all(u.get_mantissa(v.to(u.mV)) > -60.0))
        # the 1 ms axonal delay (brainstate.nn.Delay under brainpy.state's InputDelay) holds
        # the spikes back exactly 10 steps of 0.1 ms
        assert arrivals == {False: 0, True: 10}


class TestBrainpy:
    """brainpy 2.x: ``brainpy.math.Variable`` is ``class Variable(brainstate.State, Array)``
    with a slotted ``Array``; it is built on the hosted state core (``brainstate/_hosted.py``)."""

    def test_variable_is_a_state_that_both_packages_transform(self):
        bm = _need("brainpy.math", "brainpy")
        from brainstate._hosted import is_hosted

        v = bm.Variable(jnp.zeros(3))
        assert is_hosted(type(v)) and isinstance(v, brainstate.State)
        v += 1.0
        v[0] = 5.0
        assert np.array_equal(np.asarray(v.value), [5.0, 1.0, 1.0])
        with pytest.raises(Exception, match="shape"):  # brainpy's own setter check
            v.value = jnp.zeros(4)

        @bm.jit
        def bp_step(x):
            v.value = v.value + x
            return v * 2

        @brainstate.transform.jit
        def bs_step(x):
            v.value = v.value * x
            return v.value.sum()

        assert np.allclose(np.asarray(bp_step(1.0)), [12.0, 4.0, 4.0])
        assert float(bs_step(2.0)) == pytest.approx(20.0)
        assert np.allclose(np.asarray(v.value), [12.0, 4.0, 4.0])
        assert float(bs_step(1.0)) == pytest.approx(20.0)  # cached trace, current value

    def test_variable_with_a_batch_axis_accepts_another_batch_size(self):
        bm = _need("brainpy.math", "brainpy")
        v = bm.Variable(jnp.zeros((5, 4)), batch_axis=0)
        v.value = jnp.ones((7, 4))  # brainpy's rule: the batch axis may change
        assert v.value.shape == (7, 4) and v._signature == brainstate._impl.core.make_signature(
            jnp.ones((7, 4)))

    def test_grad_of_a_trainable_variable(self):
        bm = _need("brainpy.math", "brainpy")
        w = bm.TrainVar(jnp.array([1.0, -2.0]))
        g = bm.grad(lambda: jnp.sum(w.value ** 2), grad_vars=w)()
        assert np.allclose(np.asarray(g), [2.0, -4.0])
        model = brainstate.nn.Module()
        model.w = w
        assert list(model.states().values()) == [w]

    def test_an_excitatory_inhibitory_network_spikes(self):
        bp = _need("brainpy", "brainpy")
        bm = bp.math
        bm.random.seed(0)

        class EINet(bp.DynSysGroup):
            def __init__(self):
                super().__init__()
                self.N = bp.dyn.LifRef(400, V_rest=-60., V_th=-50., V_reset=-60., tau=20.,
                                       tau_ref=5., V_initializer=bp.init.Normal(-55., 2.))
                self.delay = bp.VarDelay(self.N.spike, entries={"I": None})
                # dense masked weights: brainevent's event kernels need numba on CPU
                self.E = bp.dyn.ProjAlignPostMg1(
                    comm=bp.dnn.MaskedLinear(bp.conn.FixedProb(0.02, pre=320, post=400),
                                             weight=0.6),
                    syn=bp.dyn.Expon.desc(size=400, tau=5.), out=bp.dyn.COBA.desc(E=0.),
                    post=self.N)
                self.I = bp.dyn.ProjAlignPostMg1(
                    comm=bp.dnn.MaskedLinear(bp.conn.FixedProb(0.02, pre=80, post=400),
                                             weight=6.7),
                    syn=bp.dyn.Expon.desc(size=400, tau=10.), out=bp.dyn.COBA.desc(E=-80.),
                    post=self.N)

            def update(self, inp):
                spk = self.delay.at("I")
                self.E(spk[:320])
                self.I(spk[320:])
                self.delay(self.N(inp))
                return self.N.spike.value

        model = EINet()
        spikes = np.asarray(bm.as_numpy(bm.for_loop(lambda i: model.step_run(i, 20.),
                                                    np.arange(300))))
        assert spikes.shape == (300, 400)
        assert 0 < spikes.mean() < 0.05  # sparse firing, not silence and not saturation
        assert np.isfinite(np.asarray(model.N.V.value)).all()


@pytest.mark.parametrize("dist, module", [("braintools", "braintools"),
                                          ("brainpy-state", "brainpy_state"),
                                          ("brainpy", "brainpy")])
def test_the_ecosystem_packages_are_the_pinned_releases(dist, module):
    _need(module, dist)
    assert metadata.version(dist) == _PINNED[dist], (
        f"{dist} {metadata.version(dist)} is installed; these tests pin {_PINNED[dist]}")
