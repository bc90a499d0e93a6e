// Package cgroup finds which cgroup hierarchy the kernel charges memory to
// and turns the cgroup ids the BPF programs report into cgroup paths.
//
// # Modes
//
// DetectMode reads mountinfo: a cgroup2 mount alone is "v2" (modern hosts,
// /sys/fs/cgroup); a v1 memory controller mount alone is "v1" (CentOS 7);
// both is "hybrid" (systemd's unified mount next to the v1 controllers, as
// on this project's machines). On v1 and hybrid hosts the kernel charges
// pages to the task's v1 memory cgroup, and bpf_get_current_cgroup_id (a
// v2 id, usually the root's) says nothing about it, so ids come from the v1
// memory cgroup and resolve in the memory hierarchy; on v2 they resolve in
// the cgroup2 hierarchy. --cgroup-mode auto|v1|v2 (ParseMode, Select)
// overrides the detection.
//
// # Ids
//
// A cgroup id is the kernfs node id of the cgroup's directory, which on
// 64-bit kernels since 5.5 is the directory's inode number (the v2 root's
// id is 1). There is no kernel interface from id to path short of BPF, so
// the Resolver walks the hierarchy, reading each directory's entries with
// getdents (d_ino is the id: no stat per cgroup), and caches id -> path.
//
// A miss walks again, at most once per second and at most 1/20 of the time
// (a walk of 2,000 cgroups takes 40-90 ms on this project's machines), so a burst of
// unknown ids costs one walk. Cgroups that disappear keep their last path,
// marked removed, so a report names a pod that is gone. Sweep notices
// removals of the cgroups announced so far with one lstat each, walking
// only when one is gone. Updates tells the live source when an id first
// resolves and when it is removed, once each. The cache holds at most
// 65,536 ids by default; beyond that removed cgroups are dropped first, the
// longest gone first, then live ones no lookup has asked for.
package cgroup
