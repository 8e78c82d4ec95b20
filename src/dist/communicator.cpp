#include "dist/communicator.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "core/env.h"
#include "core/error.h"

namespace wick::dist {

void SingleCommunicator::abort(const std::string& why, int code) {
  std::fprintf(stderr, "wick: %s\n", why.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}

// A launcher's rank count: unset -> 0; anything but a positive number is an error naming the variable.
static int launcher_count(const char* name) {
  return static_cast<int>(env_int(name, 1, 1 << 24, "a positive number of ranks").value_or(0));
}

int launcher_world_size() {
  // Open MPI's mpirun, then PMIx (srun --mpi=pmix, other MPIs' launchers), then PMI-1/2 and SLURM's own.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"})
    if (const int n = launcher_count(name); n > 0) return n;
  if (std::getenv("SLURM_PROCID") && std::getenv("SLURM_STEP_ID"))
    if (const int n = launcher_count("SLURM_NTASKS"); n > 0) return n;
  return 1;
}

std::string compiled_backends() {
#if defined(WICK_HAVE_NCCL)
  return "mpi+nccl";
#elif defined(WICK_HAVE_MPI)
  return "mpi";
#else
  return "";
#endif
}

void default_nccl_environment() {
  // NVLink SHARP / multicast (NVLS) stays off unless asked for: it reserves a large share of GPU memory
  // per communicator and is not available on every lent machine (KINDS.md).
  setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);
}

Communicator& world() {
  static std::once_flag once;
  static std::unique_ptr<Communicator> comm;
  std::call_once(once, [] {
    const int n = launcher_world_size();
    if (n <= 1 && !std::getenv("OMPI_COMM_WORLD_SIZE")) {
      comm = std::make_unique<SingleCommunicator>();
      return;
    }
#if defined(WICK_HAVE_MPI)
    comm = make_mpi_communicator();
#else
    throw Error("started as one of " + std::to_string(n) + " ranks, but this wick was built without MPI", "mpirun",
                "install libopenmpi-dev and rebuild (CMake option WICK_MPI), or run one process");
#endif
  });
  if (!comm) throw Error("the communicator could not be made (an earlier attempt failed)", "mpirun");
  if (comm->finalized())
    throw Error("this process's ranks have already finished their job (MPI allows one per process)", "mpirun",
                "start a new process (mpirun) for another training run");
  return *comm;
}

}  // namespace wick::dist
