#!/usr/bin/env python3
"""scry(1) in roff, from the binary's own help (argument-parser's --experimental-dump-help JSON),
so the man page and `scry --help` cannot disagree. usage: scripts/manpage.py SCRY_BINARY > scry.1"""
import json
import subprocess
import sys


def roff(text):
    """Escapes text for roff: backslashes, and a leading dot or quote that would read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line for line in text.split("\n"))


def option_names(argument):
    names = []
    for name in argument.get("names", []):
        prefix = "-" if name["kind"] == "short" else "--"
        names.append("\\fB" + roff(prefix + name["name"]) + "\\fR")
    value = argument.get("valueName")
    spelled = ", ".join(names) if names else "\\fI" + roff(value or "") + "\\fR"
    if argument.get("kind") == "option" and value:
        spelled += " \\fI" + roff(value) + "\\fR"
    return spelled


def sections(discussion):
    """The discussion's blocks headed by an upper-case line (EXAMPLES, EXIT STATUS, …)."""
    heading, body, found = None, [], []
    for line in discussion.split("\n"):
        if line and line == line.upper() and not line.startswith(" ") and any(c.isalpha() for c in line):
            if heading:
                found.append((heading, body))
            heading, body = line, []
        elif heading:
            body.append(line[2:] if line.startswith("  ") else line)
    if heading:
        found.append((heading, body))
    return found


def main():
    binary = sys.argv[1]
    command = json.loads(subprocess.run([binary, "--experimental-dump-help"], check=True,
                                        capture_output=True, text=True).stdout)["command"]
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    out = [f'.TH SCRY 1 "" "{roff(version)}" "User Commands"',
           ".SH NAME", f"scry \\- {roff(command['abstract'])}",
           ".SH SYNOPSIS", "\\fBscry\\fR [\\fIoptions\\fR] [\\fIFILE\\fR|\\fIPATTERN\\fR] [\\fIPARAMETERS\\fR...]",
           ".br", "\\fBscry\\fR [\\fIoptions\\fR] \\fB\\-e\\fR \\fIPROGRAM\\fR [\\fIPARAMETERS\\fR...]",
           ".SH DESCRIPTION",
           "Scry runs tracing programs in bpftrace's language (and its own additions: bare global maps such as",
           "\\fBcount[comm]++\\fR and blocks written \\fIprobe\\fR \\fB<\\fR \\fIactions\\fR \\fB>\\fR) on real kernel probes:",
           "tracepoints, perf software and hardware events, sampling, uprobes and kprobes where the kernel has them.",
           "A program is checked and planned before anything is attached; errors point at the source.",
           "Run with no program on a terminal for an interactive session.",
           ".SH OPTIONS"]
    for argument in command["arguments"]:
        if not argument.get("shouldDisplay", True):
            continue
        out += [".TP", option_names(argument), roff(argument.get("abstract", ""))]
        if argument.get("defaultValue") and argument.get("kind") == "option":
            out.append(f"(default: {roff(argument['defaultValue'])})")
    for heading, body in sections(command.get("discussion", "")):
        out += [f".SH {heading}", ".nf"] + [roff(line) for line in body if line is not None] + [".fi"]
    out += [".SH FILES", "Language reference: docs/language.md in Scry's sources; internals: docs/internals.md.",
            ".SH SEE ALSO", "\\fBbpftrace\\fR(8), \\fBperf\\fR(1), \\fBperf_event_open\\fR(2), \\fBbpf\\fR(2)"]
    print("\n".join(out))


main()
