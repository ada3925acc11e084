/*
 * irc_mpi.c: the few MPI calls data-parallel training needs, behind a plain
 * C ABI, so irc can load them with dlopen without knowing the MPI
 * implementation's ABI (OpenMPI and MPICH differ in MPI_Comm, MPI_Datatype,
 * ...). irc compiles this file with the system's `mpicc` when it finds
 * itself started by mpirun, and caches the library like a model's.
 *
 * Every function returns 0 or an MPI error code (an int), except
 * irc_mpi_abort, which does not return.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <mpi.h>

#define IRC_MPI_ABI 1

/* The version of this ABI; irc refuses a library with another. */
int irc_mpi_abi(void) { return IRC_MPI_ABI; }

/* MPI_Init, unless something in the process already initialized MPI. */
int irc_mpi_init(void) {
    int done = 0;
    int rc = MPI_Initialized(&done);
    if (rc != MPI_SUCCESS || done) return rc;
    return MPI_Init(NULL, NULL);
}

int irc_mpi_rank(int *rank) { return MPI_Comm_rank(MPI_COMM_WORLD, rank); }

int irc_mpi_size(int *size) { return MPI_Comm_size(MPI_COMM_WORLD, size); }

/* buf[0..n) = the element-wise sum of every rank's buf, in place. Counts
 * above INT_MAX go in INT_MAX pieces (MPI counts are int). */
int irc_mpi_allreduce_sum_f32(float *buf, int64_t n) {
    while (n > 0) {
        int count = n > INT_MAX ? INT_MAX : (int)n;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        buf += count;
        n -= count;
    }
    return MPI_SUCCESS;
}

/* buf[0..n) reduced over the ranks in place: op 0 sum, 1 max, 2 min. */
int irc_mpi_allreduce_f64(double *buf, int n, int op) {
    MPI_Op o = op == 1 ? MPI_MAX : op == 2 ? MPI_MIN : MPI_SUM;
    return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, o, MPI_COMM_WORLD);
}

int irc_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

/* Stops every rank (the others would wait forever for this one). */
void irc_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

int irc_mpi_finalize(void) {
    int done = 0;
    MPI_Finalized(&done);
    return done ? MPI_SUCCESS : MPI_Finalize();
}

/* The message of an MPI error code, into out[0..cap). */
void irc_mpi_error_string(int code, char *out, int cap) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (cap <= 0) return;
    if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) len = 0;
    if (len >= cap) len = cap - 1;
    for (int i = 0; i < len; i++) out[i] = msg[i];
    out[len] = '\0';
}
