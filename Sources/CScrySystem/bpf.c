// The bpf(2) calls ScryKernel needs, each filling `union bpf_attr` (see CScryBPF.h).
#define _GNU_SOURCE
#include "CScryBPF.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

const uint32_t SCRY_BPF_MAP_TYPE_PERF_EVENT_ARRAY = BPF_MAP_TYPE_PERF_EVENT_ARRAY;
const uint32_t SCRY_BPF_MAP_TYPE_PERCPU_ARRAY = BPF_MAP_TYPE_PERCPU_ARRAY;
const uint32_t SCRY_BPF_MAP_TYPE_PERCPU_HASH = BPF_MAP_TYPE_PERCPU_HASH;
const uint32_t SCRY_BPF_F_NO_PREALLOC = BPF_F_NO_PREALLOC;
const uint32_t SCRY_BPF_MAP_TYPE_STACK_TRACE = BPF_MAP_TYPE_STACK_TRACE;
const uint32_t SCRY_BPF_MAP_TYPE_RINGBUF = BPF_MAP_TYPE_RINGBUF;
const uint32_t SCRY_BPF_MAP_TYPE_ARRAY = BPF_MAP_TYPE_ARRAY;
const uint32_t SCRY_BPF_MAP_TYPE_PROG_ARRAY = BPF_MAP_TYPE_PROG_ARRAY;
const uint32_t SCRY_BPF_PROG_TYPE_TRACEPOINT = BPF_PROG_TYPE_TRACEPOINT;
const uint32_t SCRY_BPF_PROG_TYPE_KPROBE = BPF_PROG_TYPE_KPROBE;
const uint32_t SCRY_BPF_PROG_TYPE_PERF_EVENT = BPF_PROG_TYPE_PERF_EVENT;
const uint32_t SCRY_BPF_PROG_TYPE_RAW_TRACEPOINT = BPF_PROG_TYPE_RAW_TRACEPOINT;

static int scry_bpf(int cmd, union bpf_attr *attr)
{
  long r;
  do {
    r = syscall(SYS_bpf, cmd, attr, sizeof(*attr));
  } while (r < 0 && errno == EINTR);
  return (int)r;
}

// Object names allow [A-Za-z0-9_.] and at most 15 bytes; anything else is dropped so a
// descriptive name never makes a load fail.
static void scry_bpf_copy_name(char dst[BPF_OBJ_NAME_LEN], const char *name)
{
  if (!name)
    return;
  int n = 0;
  for (const char *p = name; *p && n < BPF_OBJ_NAME_LEN - 1; p++) {
    char c = *p;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.')
      dst[n++] = c;
  }
}

int scry_bpf_map_create(uint32_t map_type, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                        uint32_t map_flags, const char *name)
{
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_type = map_type;
  attr.key_size = key_size;
  attr.value_size = value_size;
  attr.max_entries = max_entries;
  attr.map_flags = map_flags;
  scry_bpf_copy_name(attr.map_name, name);
  // New fds are CLOEXEC by default for bpf(2) (BPF_F_* flags are not needed for that).
  return scry_bpf(BPF_MAP_CREATE, &attr);
}

int scry_bpf_map_update(int map_fd, const void *key, const void *value, uint64_t flags)
{
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_fd = (uint32_t)map_fd;
  attr.key = (uint64_t)(uintptr_t)key;
  attr.value = (uint64_t)(uintptr_t)value;
  attr.flags = flags;
  return scry_bpf(BPF_MAP_UPDATE_ELEM, &attr);
}

int scry_bpf_map_lookup(int map_fd, const void *key, void *value)
{
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_fd = (uint32_t)map_fd;
  attr.key = (uint64_t)(uintptr_t)key;
  attr.value = (uint64_t)(uintptr_t)value;
  return scry_bpf(BPF_MAP_LOOKUP_ELEM, &attr);
}

int scry_bpf_map_next_key(int map_fd, const void *key, void *next_key)
{
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_fd = (uint32_t)map_fd;
  attr.key = (uint64_t)(uintptr_t)key;
  attr.next_key = (uint64_t)(uintptr_t)next_key;
  return scry_bpf(BPF_MAP_GET_NEXT_KEY, &attr);
}

int scry_bpf_prog_load(uint32_t prog_type, uint32_t expected_attach_type, const void *insns, uint32_t insn_count,
                       const char *license, const char *name, uint32_t log_level, char *log_buf, uint32_t log_size)
{
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_type = prog_type;
  attr.expected_attach_type = expected_attach_type;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = insn_count;
  attr.license = (uint64_t)(uintptr_t)license;
  if (log_level && log_buf && log_size) {
    attr.log_level = log_level;
    attr.log_buf = (uint64_t)(uintptr_t)log_buf;
    attr.log_size = log_size;
    log_buf[0] = 0;
  }
  scry_bpf_copy_name(attr.prog_name, name);
  return scry_bpf(BPF_PROG_LOAD, &attr);
}

int scry_bpf_prog_test_run(int prog_fd, uint32_t *retval)
{
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.test.prog_fd = prog_fd;
  int result = scry_bpf(BPF_PROG_TEST_RUN, &attr);
  if (result == 0 && retval) *retval = attr.test.retval;
  return result;
}

// enum bpf_attach_type's BPF_TRACE_UPROBE_MULTI (uapi linux/bpf.h, 6.6+): Debian's headers
// may predate it, so it and the link's attributes are spelled out here.
const uint32_t SCRY_BPF_TRACE_UPROBE_MULTI = 48;
#define SCRY_BPF_F_UPROBE_MULTI_RETURN 1u

int scry_bpf_link_uprobe(int prog_fd, const char *path, uint64_t offset, uint64_t ref_ctr_offset, int is_return)
{
  // `link_create` of union bpf_attr with its `uprobe_multi` member, field for field.
  struct {
    uint32_t prog_fd, target_fd, attach_type, flags;
    uint64_t path, offsets, ref_ctr_offsets, cookies;
    uint32_t cnt, multi_flags, pid, padding;
  } attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_fd = (uint32_t)prog_fd;
  attr.attach_type = SCRY_BPF_TRACE_UPROBE_MULTI;
  attr.path = (uint64_t)(uintptr_t)path;
  attr.offsets = (uint64_t)(uintptr_t)&offset;
  attr.ref_ctr_offsets = ref_ctr_offset ? (uint64_t)(uintptr_t)&ref_ctr_offset : 0;
  attr.cnt = 1;
  attr.multi_flags = is_return ? SCRY_BPF_F_UPROBE_MULTI_RETURN : 0;
  return (int)syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
}

int scry_bpf_raw_tracepoint_open(const char *name, int prog_fd)
{
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.raw_tracepoint.name = (uint64_t)(uintptr_t)name;
  attr.raw_tracepoint.prog_fd = (uint32_t)prog_fd;
  return scry_bpf(BPF_RAW_TRACEPOINT_OPEN, &attr);
}

int scry_perf_set_bpf(int perf_fd, int prog_fd) { return ioctl(perf_fd, PERF_EVENT_IOC_SET_BPF, prog_fd); }
