// A node's keeper: the small process between the supervisor and each node that makes the
// node's whole process tree end with the node.
//
// PR_SET_PDEATHSIG reaches only a node's own process. Whatever the node starts (the program
// behind a wrapper shell, a background child, a daemon that double-forks and calls setsid)
// would outlive it, and outlive the supervisor, holding the pipeline's channels. So Spawn
// forks a keeper, which makes itself a child subreaper (PR_SET_CHILD_SUBREAPER: every orphan
// below it is re-parented to it, whatever session it moved to) and forks the node. The keeper
// ends the tree when
//   - the node exits (for any reason): it kills everything still running below it, then
//     exits as the node did, so the supervisor reaps one status that means "the node and all
//     it started are gone";
//   - the supervisor dies, even by SIGKILL: its parent-death signal (SIGHUP, caught) tells it,
//     and it kills everything below it at once.
// The keeper receives none of the supervisor's stop signals: those go to the node's process
// group. Only SIGKILL sent to the keeper itself by hand defeats it.
//
// Everything here runs in a child forked from a process that may have had other threads, so
// it uses async-signal-safe calls only: no allocation, no stdio, no locks.
#pragma once

#include <sys/types.h>

namespace quiver::supervisor {

/// The keeper's loop, after it has forked `node` (a process group of its own) in a process
/// that is a child subreaper and blocks every signal, with PR_SET_PDEATHSIG = SIGHUP set
/// against `supervisor`. Waits until the node exits or the supervisor dies, then kills every
/// descendant and exits: with the node's exit code, or by the node's signal (no core dump).
[[noreturn]] void KeepNode(pid_t node, pid_t supervisor);

/// SIGKILLs every descendant of the calling process (which must be a child subreaper) and
/// the process group `group`, and reaps them all; returns once it has no child left. Each
/// killed process's children are re-parented to the caller and killed in the next round, so
/// a tree of depth d takes d rounds.
void KillDescendants(pid_t group);

}  // namespace quiver::supervisor
