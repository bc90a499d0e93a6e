// Package memcg reads a task's memory cgroup state (cgroup v1 and v2) and
// judges whether a memory cgroup limit is what failed a charge: the one
// place fragscope's memcg rule lives, used by the live source (Reader),
// the correlator (Judge) and through the incident by every view.
//
// Many failed charges never reach the page allocator: slab objects
// (GFP_KERNEL_ACCOUNT kmalloc, the netns and its per-net structures) are
// charged by obj_cgroup_charge, so mm_page_alloc never reports them. The
// cgroup's own counters do: v1 memory.failcnt (per counter, not
// hierarchical) and v2 memory.events "max" (propagated to ancestors) rise
// at the cgroup whose limit refused the charge.
package memcg
