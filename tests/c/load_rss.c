/* The peak memory of loading a safetensors file with runtime-c/irc_safetensors.h, for
 * tests/load_memory.rs: a region of NUMEL floats (touched first), then irc_st_open_file +
 * irc_st_load_params of the tensor `w`; prints how far the peak (VmHWM) rose, in KiB. */
#include "irc_safetensors.h"

static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key)))
            v = atol(line + strlen(key));
    if (f)
        fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return fprintf(stderr, "usage: %s FILE NUMEL\n", argv[0]), 2;
    size_t numel = (size_t)atoll(argv[2]);
    float *region = malloc(numel * sizeof(float));
    if (!region)
        return 3;
    for (size_t i = 0; i < numel; i++) /* resident before the measurement (a memset of 0 may become calloc) */
        region[i] = 1.0f;
    irc_param_info p[1] = {{"w", 1, {(int64_t)numel, 0, 0, 0}, 0, numel}};
    long before = status_kb("VmHWM:");
    irc_st st;
    char err[512];
    if (irc_st_open_file(&st, argv[1], err, sizeof err) || irc_st_load_params(&st, p, 1, region, err, sizeof err))
        return fprintf(stderr, "%s\n", err), 1;
    irc_st_close(&st);
    printf("%ld %.9g\n", status_kb("VmHWM:") - before, region[numel - 1]);
    free(region);
    return 0;
}
