// cuDNN backend-API graph builder over a run-time-loaded libcudnn (see cudnn_graph.h for why).
#if WICK_HAVE_CUDNN
#include "ops/cuda/cudnn_graph.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace wick::cuda_ops::cudnn {

struct Api {
  decltype(&cudnnGetVersion) GetVersion = nullptr;
  decltype(&cudnnGetErrorString) GetErrorString = nullptr;
  decltype(&cudnnGetLastErrorString) GetLastErrorString = nullptr;
  decltype(&cudnnCreate) Create = nullptr;
  decltype(&cudnnSetStream) SetStream = nullptr;
  decltype(&cudnnBackendCreateDescriptor) CreateDescriptor = nullptr;
  decltype(&cudnnBackendDestroyDescriptor) DestroyDescriptor = nullptr;
  decltype(&cudnnBackendSetAttribute) SetAttribute = nullptr;
  decltype(&cudnnBackendGetAttribute) GetAttribute = nullptr;
  decltype(&cudnnBackendFinalize) Finalize = nullptr;
  decltype(&cudnnBackendExecute) Execute = nullptr;
};

namespace {

std::once_flag g_once;
Api g_api;
bool g_loaded = false;
std::string g_error;

template <typename F> bool bind(void* lib, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn) g_error = std::string("libcudnn has no ") + name;
  return fn != nullptr;
}

void load() {
  // WICK_CUDNN_LIB names the library file; else the loader's search path (LD_LIBRARY_PATH, ldconfig), then the
  // folder CMake found it in at build time.
  std::vector<std::string> names;
  if (const char* env = std::getenv("WICK_CUDNN_LIB"); env && *env) names.emplace_back(env);
  names.emplace_back("libcudnn.so.9");
#ifdef WICK_CUDNN_LIB_DIR
  names.emplace_back(std::string(WICK_CUDNN_LIB_DIR) + "/libcudnn.so.9");
#endif
  void* lib = nullptr;
  for (const std::string& n : names) {
    lib = dlopen(n.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (lib) break;
    const char* e = dlerror();
    g_error = e ? e : ("cannot load " + n);
  }
  if (!lib) return;
  Api a;
  bool ok = bind(lib, "cudnnGetVersion", a.GetVersion) && bind(lib, "cudnnGetErrorString", a.GetErrorString) &&
            bind(lib, "cudnnGetLastErrorString", a.GetLastErrorString) && bind(lib, "cudnnCreate", a.Create) &&
            bind(lib, "cudnnSetStream", a.SetStream) &&
            bind(lib, "cudnnBackendCreateDescriptor", a.CreateDescriptor) &&
            bind(lib, "cudnnBackendDestroyDescriptor", a.DestroyDescriptor) &&
            bind(lib, "cudnnBackendSetAttribute", a.SetAttribute) &&
            bind(lib, "cudnnBackendGetAttribute", a.GetAttribute) && bind(lib, "cudnnBackendFinalize", a.Finalize) &&
            bind(lib, "cudnnBackendExecute", a.Execute);
  if (!ok) return;
  if (a.GetVersion() < 90000) {
    g_error = "libcudnn " + std::to_string(a.GetVersion()) + " is older than 9.0";
    return;
  }
  g_api = a;
  g_loaded = true;
  g_error.clear();
}

[[noreturn]] void fail(const char* what, cudnnStatus_t s) {
  const Api* a = api();
  char msg[512] = {0};
  if (a) a->GetLastErrorString(msg, sizeof msg);
  throw Error(std::string("cuDNN: ") + what + ": " + (a ? a->GetErrorString(s) : "?") + (msg[0] ? " (" : "") +
              msg + (msg[0] ? ")" : ""));
}

void check(cudnnStatus_t s, const char* what) {
  if (s != CUDNN_STATUS_SUCCESS) fail(what, s);
}

}  // namespace

const Api* api() {
  std::call_once(g_once, load);
  return g_loaded ? &g_api : nullptr;
}
std::string load_error() {
  api();
  return g_error;
}
int version() {
  const Api* a = api();
  return a ? static_cast<int>(a->GetVersion()) : 0;
}

Desc::Desc(cudnnBackendDescriptorType_t type) {
  const Api* a = api();
  WICK_CHECK(a, "cuDNN is not loaded: " << g_error);
  check(a->CreateDescriptor(type, &d_), "create descriptor");
}
Desc::~Desc() {
  if (d_) api()->DestroyDescriptor(d_);
}
void Desc::set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* value) {
  const cudnnStatus_t s = api()->SetAttribute(d_, name, type, count, value);
  if (s != CUDNN_STATUS_SUCCESS) fail(("set attribute " + std::to_string(int(name))).c_str(), s);
}
void Desc::finalize() { check(api()->Finalize(d_), "finalize"); }

namespace {
DescPtr make(cudnnBackendDescriptorType_t t) { return std::make_shared<Desc>(t); }
void set_desc(Desc& d, cudnnBackendAttributeName_t name, const Desc& v) {
  cudnnBackendDescriptor_t p = v.get();
  d.set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &p);
}
}  // namespace

TensorRef GraphBuilder::tensor(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides,
                               cudnnDataType_t dt, bool is_virtual, bool by_value) {
  TensorRef t{next_uid_++, make(CUDNN_BACKEND_TENSOR_DESCRIPTOR)};
  const int64_t align = 16;
  t.desc->set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt);
  t.desc->set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, int64_t(dims.size()), dims.data());
  t.desc->set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, int64_t(strides.size()), strides.data());
  t.desc->set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &t.uid);
  t.desc->set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
  if (is_virtual) {
    const bool v = true;
    t.desc->set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v);
  }
  if (by_value) {
    const bool v = true;
    t.desc->set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &v);
  }
  t.desc->finalize();
  keep_.push_back(t.desc);
  return t;
}

TensorRef GraphBuilder::virt(const std::vector<int64_t>& dims, cudnnDataType_t dt) {
  std::vector<int64_t> strides(dims.size(), 1);
  for (int i = int(dims.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * dims[i + 1];
  return tensor(dims, strides, dt, true);
}

void GraphBuilder::pointwise(cudnnPointwiseMode_t mode, const TensorRef& x, const TensorRef* b, const TensorRef* t,
                             const TensorRef& y, cudnnDataType_t prec, int64_t axis) {
  DescPtr pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  pw->set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  pw->set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
  if (axis >= 0) pw->set(CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis);
  pw->finalize();
  keep_.push_back(pw);
  DescPtr op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  set_desc(*op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, *pw);
  set_desc(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, *x.desc);
  if (b) set_desc(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b->desc);
  if (t) set_desc(*op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, *t->desc);
  set_desc(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, *y.desc);
  const float one = 1.0f;
  op->set(CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one);
  op->set(CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one);
  op->finalize();
  ops_.push_back(op);
}

void GraphBuilder::reduction(cudnnReduceTensorOp_t red, const TensorRef& x, const TensorRef& y) {
  DescPtr rd = make(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
  rd->set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &red);
  rd->set(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32);
  rd->finalize();
  keep_.push_back(rd);
  DescPtr op = make(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
  set_desc(*op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, *x.desc);
  set_desc(*op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, *y.desc);
  set_desc(*op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, *rd);
  op->finalize();
  ops_.push_back(op);
}

void GraphBuilder::matmul(const TensorRef& a, const TensorRef& b, const TensorRef& c) {
  DescPtr md = make(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
  md->set(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32);
  md->finalize();
  keep_.push_back(md);
  DescPtr op = make(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
  set_desc(*op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, *a.desc);
  set_desc(*op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, *b.desc);
  set_desc(*op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, *c.desc);
  set_desc(*op, CUDNN_ATTR_OPERATION_MATMUL_DESC, *md);
  op->finalize();
  ops_.push_back(op);
}

void GraphBuilder::reshape(const TensorRef& x, const TensorRef& y) {
  DescPtr op = make(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
  set_desc(*op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, *x.desc);
  set_desc(*op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, *y.desc);
  op->finalize();
  ops_.push_back(op);
}

DescPtr GraphBuilder::build_plan(cudnnHandle_t handle, int64_t* ws, std::string* engine_note) {
  DescPtr graph = make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  std::vector<cudnnBackendDescriptor_t> raw;
  for (const DescPtr& o : ops_) raw.push_back(o->get());
  graph->set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, int64_t(raw.size()), raw.data());
  graph->set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  graph->finalize();
  keep_.push_back(graph);
  std::string tried;
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    DescPtr heur = make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    cudnnBackendDescriptor_t g = graph->get();
    heur->set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &g);
    heur->set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    if (api()->Finalize(heur->get()) != CUDNN_STATUS_SUCCESS) continue;
    int64_t n = 0;
    if (api()->GetAttribute(heur->get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n,
                            nullptr) != CUDNN_STATUS_SUCCESS || n <= 0)
      continue;
    std::vector<DescPtr> cfgs;
    std::vector<cudnnBackendDescriptor_t> raw_cfgs;
    for (int64_t i = 0; i < n; ++i) {
      cfgs.push_back(make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
      raw_cfgs.push_back(cfgs.back()->get());
    }
    int64_t got = 0;
    if (api()->GetAttribute(heur->get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, n, &got,
                            raw_cfgs.data()) != CUDNN_STATUS_SUCCESS)
      continue;
    for (int64_t i = 0; i < got; ++i) {
      DescPtr plan = make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      plan->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
      cudnnBackendDescriptor_t c = cfgs[i]->get();
      plan->set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c);
      const cudnnStatus_t s = api()->Finalize(plan->get());
      if (s != CUDNN_STATUS_SUCCESS) {
        char msg[256] = {0};
        api()->GetLastErrorString(msg, sizeof msg);
        tried += std::string(tried.empty() ? "" : "; ") + api()->GetErrorString(s) + (msg[0] ? ": " : "") + msg;
        continue;
      }
      int64_t w = 0, wn = 0;
      check(api()->GetAttribute(plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &wn, &w),
            "workspace size");
      *ws = w;
      if (engine_note)
        *engine_note = "engine config " + std::to_string(i) + " of " + std::to_string(got) +
                       (mode == CUDNN_HEUR_MODE_A ? " (heuristics A)" : " (fallback)");
      keep_.insert(keep_.end(), cfgs.begin(), cfgs.end());
      return plan;
    }
  }
  throw Error("cuDNN: no engine supports this graph" + (tried.empty() ? std::string() : " (" + tried + ")"));
}

cudnnHandle_t handle(int device) {
  static std::mutex mu;
  static std::vector<cudnnHandle_t> handles;
  const Api* a = api();
  if (!a) return nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (int(handles.size()) <= device) handles.resize(device + 1, nullptr);
  if (!handles[device]) {
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(device);
    check(a->Create(&handles[device]), "create handle");
    cudaSetDevice(prev);
  }
  return handles[device];
}

void execute(cudnnHandle_t h, const Desc& plan, const std::vector<int64_t>& uids, const std::vector<void*>& ptrs,
             void* workspace, cudaStream_t stream) {
  const Api* a = api();
  check(a->SetStream(h, stream), "set stream");
  Desc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, int64_t(uids.size()), uids.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, int64_t(ptrs.size()), ptrs.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  pack.finalize();
  check(a->Execute(h, plan.get(), pack.get()), "execute");
}

}  // namespace wick::cuda_ops::cudnn
#endif  // WICK_HAVE_CUDNN
