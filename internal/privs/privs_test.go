package privs

import (
	"strings"
	"testing"
)

func TestMissing(t *testing.T) {
	bit := func(cs ...int) (m uint64) {
		for _, c := range cs {
			m |= 1 << uint(c)
		}
		return m
	}
	cases := []struct {
		eff    uint64
		capBPF bool
		want   string
	}{
		{bit(CapSysAdmin), true, ""},
		{bit(CapBPF, CapPerfmon), true, ""},
		{bit(CapBPF), true, "CAP_PERFMON"},
		{0, true, "CAP_BPF,CAP_PERFMON"},
		{bit(CapBPF, CapPerfmon), false, "CAP_SYS_ADMIN"},
	}
	for _, c := range cases {
		if got := strings.Join(Missing(c.eff, c.capBPF), ","); got != c.want {
			t.Errorf("Missing(%#x, %v) = %q, want %q", c.eff, c.capBPF, got, c.want)
		}
	}
	err := Error([]string{"CAP_BPF", "CAP_PERFMON"})
	if err == nil || !strings.Contains(err.Error(), "CAP_BPF, CAP_PERFMON") || !strings.Contains(err.Error(), "--cap-add BPF --cap-add PERFMON") {
		t.Errorf("Error = %v", err)
	}
}
