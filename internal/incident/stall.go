package incident

import "github.com/fragscope/fragscope/internal/session"

// ContainerOf names cgroup id's container and pod as the session knows
// them, as an incident does; nil outside containers. For the views of
// events that are not incidents (stalls).
func ContainerOf(s *session.Session, id uint64) *Container {
	return (&Correlator{sess: s}).container(id)
}
