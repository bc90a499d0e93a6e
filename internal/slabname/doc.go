// Package slabname groups slab cache names that differ only by a per-instance
// part, so that counts aggregate by kind of cache.
//
// On 3.10 kernels nf_conntrack creates one cache per network namespace,
// named after the struct net pointer ("nf_conntrack_ffff8803eef66180"), and
// memcg kmem accounting clones caches per cgroup
// ("nf_conntrack_ffff8803eef66180(2:docker-abc.scope)"). Every new container
// adds such names; grouped they become "nf_conntrack_<ptr>" and
// "nf_conntrack_<ptr>(<memcg>)". Numbers that are part of a cache's identity
// (sizes like "kmalloc-rcl-96", "bio-312", "ext4_groupinfo_4k") are left
// alone.
package slabname
