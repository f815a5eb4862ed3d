// CScryBPF: the bpf(2) syscall and `union bpf_attr` for ScryKernel's BPF loader.
// `union bpf_attr` is a large union of anonymous structs that Swift imports awkwardly,
// so each command ScryKernel uses gets one small C function that fills it.
#ifndef CSCRYBPF_H
#define CSCRYBPF_H

#include <stdint.h>

/// BPF_MAP_CREATE; returns the map fd (CLOEXEC) or -1 with errno set. `name` may be NULL
/// and is cut to 15 bytes.
int scry_bpf_map_create(uint32_t map_type, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                        uint32_t map_flags, const char *name);

/// BPF_MAP_UPDATE_ELEM with `flags` (BPF_ANY = 0); returns 0 or -1 with errno set.
int scry_bpf_map_update(int map_fd, const void *key, const void *value, uint64_t flags);

/// BPF_MAP_LOOKUP_ELEM; for a per-CPU map `value` receives one 8-byte-aligned value per
/// possible CPU. Returns 0 or -1 with errno set.
int scry_bpf_map_lookup(int map_fd, const void *key, void *value);

/// BPF_MAP_GET_NEXT_KEY: the key after `key` (the first with `key` NULL) into `next_key`.
/// Returns 0, or -1 with errno ENOENT after the last key.
int scry_bpf_map_next_key(int map_fd, const void *key, void *next_key);

/// BPF_PROG_LOAD of `insn_count` 8-byte instructions; returns the program fd (CLOEXEC) or
/// -1 with errno set. With `log_level` > 0, the verifier writes its log into `log_buf`.
/// `expected_attach_type` is 0 except for programs attached through a link that needs it
/// (`SCRY_BPF_TRACE_UPROBE_MULTI`).
int scry_bpf_prog_load(uint32_t prog_type, uint32_t expected_attach_type, const void *insns, uint32_t insn_count,
                       const char *license, const char *name, uint32_t log_level, char *log_buf, uint32_t log_size);

/// BPF_LINK_CREATE of a `uprobe_multi` link (kernel 6.6+) running `prog_fd` at `offset` in the
/// file `path`, with a USDT semaphore at `ref_ctr_offset` (0: none), on return when `is_return`.
/// Returns the link fd (the probe goes with it), or -1 with errno set.
int scry_bpf_link_uprobe(int prog_fd, const char *path, uint64_t offset, uint64_t ref_ctr_offset, int is_return);

/// The expected attach type of a program for `scry_bpf_link_uprobe` (BPF_TRACE_UPROBE_MULTI).
extern const uint32_t SCRY_BPF_TRACE_UPROBE_MULTI;

/// BPF_PROG_TEST_RUN of a raw tracepoint program with no context: the kernel runs it once, now,
/// on the calling thread (so its helpers see the caller as the current task). Returns 0 with the
/// program's return value in `retval`, or -1 with errno set.
int scry_bpf_prog_test_run(int prog_fd, uint32_t *retval);

/// Attaches a BPF_PROG_TYPE_RAW_TRACEPOINT program to the kernel tracepoint `name` (BPF_RAW_TRACEPOINT_OPEN);
/// returns the link's fd (closing it detaches) or -1 with errno.
int scry_bpf_raw_tracepoint_open(const char *name, int prog_fd);

/// PERF_EVENT_IOC_SET_BPF: runs `prog_fd` when the perf event `perf_fd` fires.
int scry_perf_set_bpf(int perf_fd, int prog_fd);

extern const uint32_t SCRY_BPF_MAP_TYPE_PERF_EVENT_ARRAY;
extern const uint32_t SCRY_BPF_MAP_TYPE_PERCPU_ARRAY;
extern const uint32_t SCRY_BPF_MAP_TYPE_PERCPU_HASH;
extern const uint32_t SCRY_BPF_F_NO_PREALLOC;
extern const uint32_t SCRY_BPF_MAP_TYPE_STACK_TRACE;
extern const uint32_t SCRY_BPF_MAP_TYPE_RINGBUF;
extern const uint32_t SCRY_BPF_MAP_TYPE_ARRAY;
extern const uint32_t SCRY_BPF_MAP_TYPE_PROG_ARRAY;
extern const uint32_t SCRY_BPF_PROG_TYPE_TRACEPOINT;
extern const uint32_t SCRY_BPF_PROG_TYPE_KPROBE;
extern const uint32_t SCRY_BPF_PROG_TYPE_PERF_EVENT;
extern const uint32_t SCRY_BPF_PROG_TYPE_RAW_TRACEPOINT;

#endif
