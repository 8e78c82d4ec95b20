// `wick train --gpus N` on one host: this process becomes the launcher of N ranks. It runs
//   mpirun -np N --bind-to none --oversubscribe [--allow-run-as-root] <this wick> <the same arguments>
// (Open MPI's mpirun from PATH, or $WICK_MPIRUN), in a process group of its own, and waits for it. The
// ranks see OMPI_COMM_WORLD_SIZE = N and join one job (dist/communicator.h); --gpus N on their command
// line then just agrees with it. Ctrl-C / SIGTERM to this process becomes SIGUSR1 to mpirun, which
// forwards it to every rank: they stop at one agreed step and rank 0 saves a checkpoint. A second one
// ends the job at once (SIGTERM to mpirun's group). When any rank dies, mpirun ends the others and says
// which rank it was.
#pragma once

namespace wick::dist {

// Returns the job's exit code (mpirun's: 0 when every rank finished), or throws wick::Error when mpirun
// cannot be started.
int launch_local_ranks(int ranks);

}  // namespace wick::dist
