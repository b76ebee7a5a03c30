// Event-driven spike propagation kernels for XLA:CPU (typed FFI custom calls).
//
// A step of a spiking network propagates a few spikes through many synapses. In XLA, finding
// the spiking neurons takes a top_k over the whole population (~2 ns per neuron per step on
// CPU), which dominates the step of a large network. Here one pass over the spike bytes, 64
// at a time, finds them, and their outgoing synapses are added directly: the cost is the scan
// plus the synapses of the neurons that fired.
//
// Handlers (registered by brainstate/nn/_event_native.py):
//   brainstate_event_count   spikes pred[n_pre], targets s32[n_pre, k] -> s32[n_post]
//                            out[j] = number of spiking i with targets[i, c] == j
//   brainstate_event_weight  spikes pred[n_pre], targets s32[n_pre, k], weights f32[n_pre, k]
//                            -> f32[n_post]; out[j] = sum of weights[i, c] over those synapses
//   brainstate_spike_record  spikes pred[n], indices s32[rows], steps s32[rows], stored s32[],
//                            seen s32[], step s32[]; attribute max_events
//                            -> indices, steps (updated in place: aliased to the inputs),
//                               stored, seen, step
//                            SpikeMonitor's step: the spiking indices and the step are
//                            written from row min(stored, max_events) on; stored grows by the
//                            spike count only if they all fit in max_events; seen always.
// Targets outside [0, n_post) are skipped (padding). Leading batch axes are not handled here:
// the Python side maps over them.

#include <Python.h>

#include <cstdint>
#include <cstring>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// Calls fn(i) for every index i < n with spikes[i] true, in ascending order. Spikes are
// sparse: blocks of 64 bytes are tested at once (eight words OR-ed, which compilers vectorise)
// and skipped when silent, then their non-zero words byte by byte.
template <typename Fn>
inline void for_each_spike(const bool* spikes, int64_t n, Fn fn) {
  const unsigned char* bytes = reinterpret_cast<const unsigned char*>(spikes);
  auto visit_word = [&](int64_t i) {
    for (int64_t j = i; j < i + 8; ++j) {
      if (bytes[j]) fn(j);
    }
  };
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint64_t words[8];
    std::memcpy(words, bytes + i, 64);
    uint64_t any = 0;
    for (int k = 0; k < 8; ++k) any |= words[k];
    if (any == 0) continue;
    for (int k = 0; k < 8; ++k) {
      if (words[k] != 0) visit_word(i + 8 * k);
    }
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    if (word != 0) visit_word(i);
  }
  for (; i < n; ++i) {
    if (bytes[i]) fn(i);
  }
}

ffi::Error check_targets(ffi::Buffer<ffi::PRED>& spikes, ffi::Buffer<ffi::S32>& targets,
                         int64_t* k) {
  auto dims = targets.dimensions();
  if (dims.size() != 2 || dims[0] != static_cast<int64_t>(spikes.element_count())) {
    return ffi::Error::InvalidArgument(
        "brainstate event kernel: targets must have shape (n_pre, k) with n_pre the number "
        "of spikes");
  }
  *k = dims[1];
  return ffi::Error::Success();
}

ffi::Error EventCount(ffi::Buffer<ffi::PRED> spikes, ffi::Buffer<ffi::S32> targets,
                      ffi::ResultBuffer<ffi::S32> out) {
  int64_t k = 0;
  ffi::Error err = check_targets(spikes, targets, &k);
  if (err.failure()) return err;
  const int32_t* tgt = targets.typed_data();
  int32_t* o = out->typed_data();
  const int64_t n_post = static_cast<int64_t>(out->element_count());
  std::memset(o, 0, sizeof(int32_t) * static_cast<size_t>(n_post));
  for_each_spike(spikes.typed_data(), static_cast<int64_t>(spikes.element_count()),
                 [&](int64_t i) {
                   const int32_t* row = tgt + i * k;
                   for (int64_t c = 0; c < k; ++c) {
                     const int32_t j = row[c];
                     if (j >= 0 && j < n_post) o[j] += 1;
                   }
                 });
  return ffi::Error::Success();
}

ffi::Error EventWeight(ffi::Buffer<ffi::PRED> spikes, ffi::Buffer<ffi::S32> targets,
                       ffi::Buffer<ffi::F32> weights, ffi::ResultBuffer<ffi::F32> out) {
  int64_t k = 0;
  ffi::Error err = check_targets(spikes, targets, &k);
  if (err.failure()) return err;
  if (weights.element_count() != targets.element_count()) {
    return ffi::Error::InvalidArgument(
        "brainstate event kernel: weights must have the shape of targets");
  }
  const int32_t* tgt = targets.typed_data();
  const float* w = weights.typed_data();
  float* o = out->typed_data();
  const int64_t n_post = static_cast<int64_t>(out->element_count());
  std::memset(o, 0, sizeof(float) * static_cast<size_t>(n_post));
  for_each_spike(spikes.typed_data(), static_cast<int64_t>(spikes.element_count()),
                 [&](int64_t i) {
                   const int32_t* row = tgt + i * k;
                   const float* wr = w + i * k;
                   for (int64_t c = 0; c < k; ++c) {
                     const int32_t j = row[c];
                     if (j >= 0 && j < n_post) o[j] += wr[c];
                   }
                 });
  return ffi::Error::Success();
}

ffi::Error SpikeRecord(ffi::Buffer<ffi::PRED> spikes, ffi::Buffer<ffi::S32> indices_in,
                       ffi::Buffer<ffi::S32> steps_in, ffi::Buffer<ffi::S32> stored_in,
                       ffi::Buffer<ffi::S32> seen_in, ffi::Buffer<ffi::S32> step_in,
                       int64_t max_events, ffi::ResultBuffer<ffi::S32> indices,
                       ffi::ResultBuffer<ffi::S32> steps, ffi::ResultBuffer<ffi::S32> stored,
                       ffi::ResultBuffer<ffi::S32> seen, ffi::ResultBuffer<ffi::S32> step) {
  const int64_t n = static_cast<int64_t>(spikes.element_count());
  const int64_t rows = static_cast<int64_t>(indices->element_count());
  if (static_cast<int64_t>(steps->element_count()) != rows || max_events < 0 ||
      rows < max_events + n) {
    return ffi::Error::InvalidArgument(
        "brainstate spike record: the buffers must have max_events + n rows");
  }
  int32_t* idx = indices->typed_data();
  int32_t* stp = steps->typed_data();
  // the results alias the inputs; copy only if XLA gave separate buffers
  if (idx != indices_in.typed_data()) {
    std::memcpy(idx, indices_in.typed_data(), sizeof(int32_t) * static_cast<size_t>(rows));
  }
  if (stp != steps_in.typed_data()) {
    std::memcpy(stp, steps_in.typed_data(), sizeof(int32_t) * static_cast<size_t>(rows));
  }
  const int64_t before = stored_in.typed_data()[0];
  const int32_t now = step_in.typed_data()[0];
  const int64_t at = before < max_events ? before : max_events;
  int64_t count = 0;
  for_each_spike(spikes.typed_data(), n, [&](int64_t i) {
    idx[at + count] = static_cast<int32_t>(i);
    stp[at + count] = now;
    ++count;
  });
  stored->typed_data()[0] =
      static_cast<int32_t>(before + count <= max_events ? before + count : before);
  seen->typed_data()[0] = static_cast<int32_t>(seen_in.typed_data()[0] + count);
  step->typed_data()[0] = now + 1;
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(BrainstateEventCount, EventCount,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::PRED>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(BrainstateEventWeight, EventWeight,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::PRED>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(BrainstateSpikeRecord, SpikeRecord,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::PRED>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Attr<int64_t>("max_events")
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>());

// --- the Python module: a dict {target name: PyCapsule of the handler} -------------------

static PyObject* handlers(PyObject*, PyObject*) {
  PyObject* out = PyDict_New();
  if (out == nullptr) return nullptr;
  struct Entry {
    const char* name;
    XLA_FFI_Handler* fn;
  } entries[] = {
      {"brainstate_event_count", BrainstateEventCount},
      {"brainstate_event_weight", BrainstateEventWeight},
      {"brainstate_spike_record", BrainstateSpikeRecord},
  };
  for (const Entry& e : entries) {
    PyObject* capsule = PyCapsule_New(reinterpret_cast<void*>(e.fn), nullptr, nullptr);
    if (capsule == nullptr || PyDict_SetItemString(out, e.name, capsule) < 0) {
      Py_XDECREF(capsule);
      Py_DECREF(out);
      return nullptr;
    }
    Py_DECREF(capsule);
  }
  return out;
}

static PyMethodDef methods[] = {
    {"handlers", handlers, METH_NOARGS,
     "{name: PyCapsule}: the XLA FFI handlers, for jax.ffi.register_ffi_target."},
    {nullptr, nullptr, 0, nullptr},
};

static PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_event_cpu",
    "Event-driven spike propagation kernels for XLA:CPU (typed FFI custom calls).", -1, methods,
};

PyMODINIT_FUNC PyInit__event_cpu(void) { return PyModule_Create(&module); }
