// uprobe-floor BINARY FILE_OFFSET: attaches an empty BPF program (r0 = 0; exit) to a uprobe at
// FILE_OFFSET of BINARY through a uprobe_multi link, prints "Attaching 1 probe..." and waits for
// a signal. scripts/bench.sh runs it as the tracer "floor": what the kernel's uprobe costs a hit
// before any tracer's program does anything, the part of both tools' totals neither can remove.
#define _GNU_SOURCE
#include <linux/bpf.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void stop(int signal) { (void)signal; }

int main(int argc, char **argv) {
  // A background job of a script starts with SIGINT ignored: catch it, so it ends the wait.
  signal(SIGINT, stop);
  signal(SIGTERM, stop);
  if (argc != 3) { fprintf(stderr, "usage: %s BINARY FILE_OFFSET\n", argv[0]); return 2; }
  uint64_t offset = strtoull(argv[2], NULL, 0);
  struct bpf_insn prog[] = {
    { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
    { .code = BPF_JMP | BPF_EXIT },
  };
  union bpf_attr load;
  memset(&load, 0, sizeof(load));
  load.prog_type = BPF_PROG_TYPE_KPROBE;
  load.expected_attach_type = 48; // BPF_TRACE_UPROBE_MULTI (6.6+; Debian's headers may predate it)
  load.insns = (uintptr_t)prog;
  load.insn_cnt = 2;
  load.license = (uintptr_t)"GPL";
  int prog_fd = syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof(load));
  if (prog_fd < 0) { perror("BPF_PROG_LOAD"); return 1; }
  // link_create with its uprobe_multi member, field for field.
  struct {
    uint32_t prog_fd, target_fd, attach_type, flags;
    uint64_t path, offsets, ref_ctr_offsets, cookies;
    uint32_t cnt, multi_flags, pid, padding;
  } link;
  memset(&link, 0, sizeof(link));
  link.prog_fd = prog_fd;
  link.attach_type = 48;
  link.path = (uintptr_t)argv[1];
  link.offsets = (uintptr_t)&offset;
  link.cnt = 1;
  if (syscall(SYS_bpf, BPF_LINK_CREATE, &link, sizeof(link)) < 0) { perror("BPF_LINK_CREATE uprobe_multi"); return 1; }
  printf("Attaching 1 probe...\n");
  fflush(stdout);
  pause();
  return 0;
}
