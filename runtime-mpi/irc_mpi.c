/*
 * irc_mpi.c: the few MPI calls data-parallel training needs, behind a plain
 * C ABI, so irc can load them with dlopen without knowing the MPI
 * implementation's ABI (OpenMPI and MPICH differ in MPI_Comm, MPI_Datatype,
 * ...). irc compiles this file with the system's `mpicc` when it finds
 * itself started by mpirun, and caches the library like a model's.
 *
 * Every function returns 0 or an MPI error code (an int), or one of the
 * IRC_MPI_E* codes below, except irc_mpi_abort, which does not return.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <mpi.h>

#define IRC_MPI_ABI 2

/* Errors of the overlapped reduction (negative: no MPI code is). */
#define IRC_MPI_ENOMEM (-1)   /* out of memory for the requests */
#define IRC_MPI_ERANGE (-2)   /* a range outside the region, or reported twice (or out of memory) */
#define IRC_MPI_EUNCOVERED (-3) /* finish before the whole region was reported */

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

/* The state of a reduction that starts while the backward runs. */
typedef struct {
    int64_t lo, hi;
} irc_mpi_run;

/* Disjoint runs of floats, by offset. */
typedef struct {
    irc_mpi_run *at;
    int n, cap;
} irc_mpi_runs;

typedef struct {
    float *grads;
    int64_t floats, bucket;
    irc_mpi_runs pending; /* reported floats not yet started */
    irc_mpi_runs covered; /* every float reported (to check that they tile the region) */
    MPI_Request *reqs;
    int nreq, req_cap;
    int err;             /* the first error, returned by finish */
    double busy;         /* seconds inside ready() */
} irc_mpi_overlap;

/* Room for one more of `size` bytes in *items (of *cap); 0 when out of memory. */
static int grow(void **items, int n, int *cap, size_t size) {
    if (n < *cap) return 1;
    int c = *cap ? 2 * *cap : 64;
    void *p = realloc(*items, (size_t)c * size);
    if (!p) return 0;
    *items = p;
    *cap = c;
    return 1;
}

/* Start the in-place all-reduce of grads[lo..hi), in pieces of at most a
 * bucket (and INT_MAX, MPI counts being int). */
static void start(irc_mpi_overlap *o, int64_t lo, int64_t hi) {
    while (lo < hi && !o->err) {
        int64_t n = hi - lo < o->bucket ? hi - lo : o->bucket;
        if (n > INT_MAX) n = INT_MAX;
        if (!grow((void **)&o->reqs, o->nreq, &o->req_cap, sizeof *o->reqs)) {
            o->err = IRC_MPI_ENOMEM;
            return;
        }
        o->err = MPI_Iallreduce(MPI_IN_PLACE, o->grads + lo, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                                &o->reqs[o->nreq]);
        o->nreq += !o->err;
        lo += n;
    }
}

static void remove_run(irc_mpi_runs *r, int i) {
    for (int j = i + 1; j < r->n; j++) r->at[j - 1] = r->at[j];
    r->n--;
}

/* Pending run i goes out and leaves the list. */
static void start_run(irc_mpi_overlap *o, int i) {
    start(o, o->pending.at[i].lo, o->pending.at[i].hi);
    remove_run(&o->pending, i);
}

/* Add [lo, hi) to the runs, joined with those it touches; returns the
 * index of the run that holds it, -1 when it overlaps one (or out of
 * memory). */
static int add_run(irc_mpi_runs *r, int64_t lo, int64_t hi) {
    int i = 0;
    while (i < r->n && r->at[i].hi < lo) i++;
    if (i < r->n && r->at[i].lo < hi && lo < r->at[i].hi) return -1;
    if (i < r->n && r->at[i].hi == lo) { /* continues run i */
        r->at[i].hi = hi;
    } else if (i < r->n && r->at[i].lo == hi) { /* ends where run i starts */
        r->at[i].lo = lo;
        return i;
    } else {
        if (!grow((void **)&r->at, r->n, &r->cap, sizeof *r->at)) return -1;
        for (int j = r->n; j > i; j--) r->at[j] = r->at[j - 1];
        r->at[i] = (irc_mpi_run){lo, hi};
        r->n++;
    }
    if (i + 1 < r->n && r->at[i + 1].lo < r->at[i].hi) return -1;
    if (i + 1 < r->n && r->at[i + 1].lo == r->at[i].hi) { /* closes a gap */
        r->at[i].hi = r->at[i + 1].hi;
        remove_run(r, i + 1);
    }
    return i;
}

/* A reduction of grads[0..floats) that starts while the backward runs:
 * ready() is handed each range once it is final, and finish() waits for
 * the sum. Every rank must report the same ranges in the same order (the
 * backward is the same program everywhere), since that orders the
 * collective calls. NULL when out of memory. */
irc_mpi_overlap *irc_mpi_overlap_begin(float *grads, int64_t floats, int64_t bucket) {
    irc_mpi_overlap *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->grads = grads;
    o->floats = floats;
    o->bucket = bucket > 0 ? bucket : 1;
    return o;
}

/* The model library's gradient hook: grads[offset..offset + n) is final.
 * Ranges join the runs they touch (the backward finishes parameters mostly
 * from the last to the first); a run goes out once it holds a bucket.
 * Then the started reductions are driven on (MPI progresses a non-blocking
 * collective only inside MPI calls). */
void irc_mpi_overlap_ready(void *user, size_t offset, size_t n) {
    irc_mpi_overlap *o = user;
    double t0 = MPI_Wtime();
    int64_t lo = (int64_t)offset, hi = lo + (int64_t)n;
    if (o->err) return;
    if (hi > o->floats || hi < lo) {
        o->err = IRC_MPI_ERANGE;
    } else if (hi > lo) {
        int i = add_run(&o->covered, lo, hi) < 0 ? -1 : add_run(&o->pending, lo, hi);
        if (i < 0) o->err = IRC_MPI_ERANGE;
        else if (o->pending.at[i].hi - o->pending.at[i].lo >= o->bucket) start_run(o, i);
    }
    if (o->nreq > 0 && !o->err) {
        int done = 0;
        o->err = MPI_Testall(o->nreq, o->reqs, &done, MPI_STATUSES_IGNORE);
        if (done) o->nreq = 0; /* all complete: their slots are free again */
    }
    o->busy += MPI_Wtime() - t0;
}

/* Start the runs left (by offset), wait for every piece and free the
 * state. *busy: seconds spent inside ready(). Fails unless the ranges
 * reported tiled the region: none outside it, none overlapping another,
 * all of it covered. */
int irc_mpi_overlap_finish(irc_mpi_overlap *o, double *busy) {
    while (o->pending.n > 0 && !o->err) start_run(o, 0);
    int rc = o->err;
    if (o->nreq > 0) {
        int w = MPI_Waitall(o->nreq, o->reqs, MPI_STATUSES_IGNORE);
        if (!rc) rc = w;
    }
    int whole = o->floats == 0 || (o->covered.n == 1 && o->covered.at[0].lo == 0 && o->covered.at[0].hi == o->floats);
    if (!rc && !whole) rc = IRC_MPI_EUNCOVERED;
    if (busy) *busy = o->busy;
    free(o->pending.at);
    free(o->covered.at);
    free(o->reqs);
    free(o);
    return rc;
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
    const char *own = code == IRC_MPI_ENOMEM ? "out of memory for the overlapped all-reduce"
                      : code == IRC_MPI_ERANGE ? "a gradient range outside the region, or reported twice"
                      : code == IRC_MPI_EUNCOVERED ? "the backward did not report the whole gradient region"
                      : NULL;
    if (own) {
        while (own[len] && len < MPI_MAX_ERROR_STRING - 1) {
            msg[len] = own[len];
            len++;
        }
    } else if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) len = 0;
    if (len >= cap) len = cap - 1;
    for (int i = 0; i < len; i++) out[i] = msg[i];
    out[len] = '\0';
}
