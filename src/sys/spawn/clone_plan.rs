//! Which process does what at a start: decided once, from the request
//! alone, and walked by the real start and by `--plan` alike.

use crate::sys::namespace::{Namespace, Namespaces};

/// How the first child comes to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// A fork: the child runs Lua, forks again or joins namespaces.
    Fork,
    /// A clone that shares our memory while we are suspended
    /// (`CLONE_VM | CLONE_VFORK`): the child only gets ready and execs,
    /// and we have nothing to do for it meanwhile.
    Vfork,
    /// A clone that shares our memory while we write its id maps beside
    /// it with raw system calls (`process::spawn_vm_alongside`).
    Alongside,
}

/// What a start asks for, as far as the process tree is concerned.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request {
    pub namespaces: Namespaces,
    /// The kinds joined (`join`).
    pub joins: Namespaces,
    /// PID 1 of a new pid namespace is a supervisor of ours.
    pub init: bool,
    /// Lua runs in the child (`fn`, `setup`) or in the parent between the
    /// clone and the child's going on (`before_start`).
    pub runs_lua: bool,
    /// The parent writes the child's id maps.
    pub parent_maps: bool,
    /// The parent moves the child into a new cgroup.
    pub cgroup: bool,
    /// `before_start` is given.
    pub before_start: bool,
    /// The parent starts a network tool for the new network namespace
    /// before the child goes on.
    pub usernet: bool,
    /// The maps can be rendered ahead and written beside a child that
    /// shares our memory (not under `--trace` or `--plan`, whose lines are
    /// formatted on the heap).
    pub prewrite: bool,
}

/// The decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClonePlan {
    /// New kinds the first child gets from clone(2).
    pub at_clone: Namespaces,
    /// New kinds it unshares afterwards, in order, after the joins.
    pub late: Namespaces,
    /// It forks once more and stays behind as a relay: pid and time
    /// namespaces made after the clone (or a joined pid namespace) hold
    /// only its children.
    pub relay: bool,
    /// The relay's child lands in another pid namespace than the relay.
    pub relay_into_pid: bool,
    /// The process in all the namespaces forks the main process and
    /// supervises it as PID 1.
    pub init: bool,
    /// The parent acts between the clone and the child's going on (maps,
    /// cgroup, before_start), so the child waits for its word.
    pub parent_acts: bool,
    pub start: Start,
}

impl ClonePlan {
    pub(crate) fn new(r: &Request) -> ClonePlan {
        let joining_user = r.joins.contains(Namespace::User);
        let mut at_clone = r.namespaces;
        // clone(2) has no flag for a time namespace (its bit is the exit
        // signal's).
        at_clone.remove(Namespace::Time);
        if r.cgroup || r.before_start {
            // A cgroup namespace's root is its creator's cgroup at that
            // moment: create it only once the parent has moved the child
            // into the new cgroup (ours, or one `before_start` chose, as
            // an OCI runtime does), so the sandbox sees that one as "/".
            at_clone.remove(Namespace::Cgroup);
        }
        let joins = !r.joins.is_empty();
        let new_user = r.namespaces.contains(Namespace::User);
        if joining_user || joins && !new_user {
            // After joining a user namespace every new kind must be made
            // from inside it; joins into namespaces of another owner need
            // our own privilege first.
            at_clone = Namespaces::empty();
        } else if joins {
            // A new user namespace at clone; the joins and the other kinds
            // then happen inside it.
            at_clone = [Namespace::User].into_iter().collect();
        }
        let mut late = r.namespaces;
        for k in at_clone.iter() {
            late.remove(k);
        }
        late.remove(Namespace::User); // only ever at clone
        let relay_into_pid = late.contains(Namespace::Pid) || r.joins.contains(Namespace::Pid);
        let relay = relay_into_pid || late.contains(Namespace::Time);
        let parent_acts = r.parent_maps || r.cgroup || r.before_start || r.usernet;
        // A child that runs no Lua and execs itself (no init, no relay)
        // can share our memory until it execs instead of copying it, as
        // posix_spawn does: no page tables to copy, no page copied on write
        // on either side, no code page to fault in again.
        let vm_child = !r.runs_lua && !r.init && !joins && late.is_empty();
        let start = if vm_child && !parent_acts {
            Start::Vfork
        } else if vm_child && r.parent_maps && !r.cgroup && !r.usernet && r.prewrite {
            Start::Alongside
        } else {
            Start::Fork
        };
        ClonePlan {
            at_clone,
            late,
            relay,
            relay_into_pid,
            init: r.init,
            parent_acts,
            start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Namespaces {
        s.split(',')
            .filter(|k| !k.is_empty())
            .map(|k| k.parse::<Namespace>().unwrap())
            .collect()
    }

    fn req(ns: &str) -> Request {
        Request {
            namespaces: kinds(ns),
            init: kinds(ns).contains(Namespace::Pid),
            parent_maps: kinds(ns).contains(Namespace::User),
            prewrite: true,
            ..Request::default()
        }
    }

    #[test]
    fn a_plain_program_shares_our_memory() {
        let p = ClonePlan::new(&Request {
            init: false,
            ..req("user,mount,net")
        });
        assert_eq!(p.start, Start::Alongside);
        assert_eq!(p.at_clone, kinds("user,mount,net"));
        assert!(p.late.is_empty() && !p.relay);
        let p = ClonePlan::new(&req("mount"));
        assert_eq!(p.start, Start::Vfork);
        assert!(!p.parent_acts);
    }

    #[test]
    fn lua_an_init_or_a_cgroup_need_a_fork() {
        for r in [
            Request {
                runs_lua: true,
                ..req("user")
            },
            req("user,pid"),
            Request {
                cgroup: true,
                ..req("user")
            },
            Request {
                prewrite: false,
                ..req("user")
            },
        ] {
            assert_eq!(ClonePlan::new(&r).start, Start::Fork, "{r:?}");
        }
    }

    #[test]
    fn time_comes_late_and_needs_a_relay() {
        let p = ClonePlan::new(&req("user,time"));
        assert_eq!(p.at_clone, kinds("user"));
        assert_eq!(p.late, kinds("time"));
        assert!(p.relay);
        assert_eq!(p.start, Start::Fork);
    }

    #[test]
    fn the_cgroup_namespace_waits_for_before_start() {
        let p = ClonePlan::new(&Request {
            before_start: true,
            ..req("mount,cgroup")
        });
        assert_eq!(p.at_clone, kinds("mount"));
        assert_eq!(p.late, kinds("cgroup"));
        assert!(p.parent_acts);
    }

    #[test]
    fn the_cgroup_namespace_waits_for_the_move() {
        let p = ClonePlan::new(&Request {
            cgroup: true,
            ..req("user,cgroup")
        });
        assert_eq!(p.at_clone, kinds("user"));
        assert_eq!(p.late, kinds("cgroup"));
        assert!(p.parent_acts && !p.relay);
    }

    #[test]
    fn joins_move_new_kinds_inside() {
        // With a new user namespace: it at clone, the rest after the joins.
        let p = ClonePlan::new(&Request {
            joins: kinds("net"),
            ..req("user,pid,mount")
        });
        assert_eq!(p.at_clone, kinds("user"));
        assert_eq!(p.late, kinds("pid,mount"));
        assert!(p.relay && p.init);
        // Joining a user namespace: everything after it.
        let p = ClonePlan::new(&Request {
            joins: kinds("user"),
            parent_maps: false,
            ..req("mount")
        });
        assert!(p.at_clone.is_empty());
        assert_eq!(p.late, kinds("mount"));
        // A joined pid namespace holds only our children.
        let p = ClonePlan::new(&Request {
            joins: kinds("pid"),
            ..req("")
        });
        assert!(p.relay);
    }
}
