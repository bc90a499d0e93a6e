package kmsg

import (
	"strconv"
	"strings"
)

// oomLine reads the OOM report's own lines (mm/oom_kill.c dump_header,
// oom_kill_process; mm/memcontrol.c mem_cgroup_print_oom_info and, from
// 4.19, mem_cgroup_print_oom_context/meminfo). The kill line closes the report.
func (m *machine) oomLine(l msgLine, t string) bool {
	o := m.open.OOM
	switch {
	case strings.HasPrefix(t, "Task in ") && strings.Contains(t, " killed as a result of limit of "):
		task, lim, _ := strings.Cut(strings.TrimPrefix(t, "Task in "), " killed as a result of limit of ")
		mc := m.memcg()
		mc.TaskPath, mc.Path = task, lim
		return true
	case isMemcgCounter(t):
		name, rest, _ := strings.Cut(t, ": usage ")
		c := MemcgCounter{Name: name}
		for _, part := range strings.Split(rest, ",") {
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, " ")
			if !ok {
				k, v = "usage", part // the first part is the usage value itself
			}
			n, err := strconv.ParseUint(strings.TrimSuffix(v, "kB"), 10, 64)
			if err != nil {
				m.note(l.n, "memcg %s: unreadable %q", name, clip(part))
				continue
			}
			switch k {
			case "usage":
				c.UsageKB = n
			case "limit":
				c.LimitKB = n
			case "failcnt":
				c.Failcnt = n
			}
		}
		mc := m.memcg()
		mc.Counters = append(mc.Counters, c)
		return true
	case strings.HasPrefix(t, "oom-kill:"):
		for _, kv := range strings.Split(strings.TrimPrefix(t, "oom-kill:"), ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "constraint":
				o.Constraint = v
			case "nodemask":
				m.open.Nodemask = v
			case "cpuset":
				m.open.Cpuset = v
			case "mems_allowed":
				m.open.MemsAllowed = v
			case "oom_memcg":
				o.OOMMemcg = v
				if mc := m.memcg(); mc.Path == "" {
					mc.Path = v
				}
			case "task_memcg":
				o.TaskMemcg = v
				if mc := m.memcg(); mc.TaskPath == "" {
					mc.TaskPath = v
				}
			}
		}
		return true
	case strings.Contains(t, "Kill process ") || strings.Contains(t, "Killed process "):
		m.killLine(l, t)
		return true
	case strings.Contains(t, " cpuset=") && strings.Contains(t, " mems_allowed="):
		// 3.x-4.18: "<comm> cpuset=/ mems_allowed=0".
		v, _ := after(t, "cpuset=")
		m.open.Cpuset = upTo(v, " ")
		v, _ = after(t, "mems_allowed=")
		m.open.MemsAllowed = upTo(v, " ")
		return true
	case strings.HasPrefix(t, "Memory cgroup stats for "), strings.HasPrefix(t, "Tasks state"),
		strings.HasPrefix(t, "[ pid ]"), strings.HasPrefix(t, "[  pid  ]"), isTaskRow(t), isStatPair(t):
		return true
	}
	return false
}

func (m *machine) memcg() *MemcgOOM {
	o := m.open.OOM
	if o.Memcg == nil {
		o.Memcg = &MemcgOOM{}
	}
	return o.Memcg
}

// isOOMFragment matches the lines of an OOM report that say so on their own.
func isOOMFragment(t string) bool {
	return strings.Contains(t, "Killed process ") || strings.Contains(t, "Kill process ") || isMemcgCounter(t) ||
		strings.HasPrefix(t, "Memory cgroup stats for ") || strings.HasPrefix(t, "Task in ") && strings.Contains(t, " killed as a result of limit of ")
}

func isMemcgCounter(t string) bool {
	for _, p := range []string{"memory: usage ", "memory+swap: usage ", "kmem: usage ", "swap: usage ", "memsw: usage "} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// isTaskRow matches a row of the OOM task table: "[ 1234]     0  1234 ...".
func isTaskRow(t string) bool {
	if len(t) < 3 || t[0] != '[' {
		return false
	}
	end := strings.IndexByte(t, ']')
	_, ok := atou([]byte(strings.TrimSpace(t[1:max(end, 1)])))
	return end > 0 && ok
}

// isStatPair matches one line of 4.19+'s memcg stats ("anon 1048576").
func isStatPair(t string) bool {
	k, v, ok := strings.Cut(t, " ")
	if !ok || k == "" || strings.IndexByte(v, ' ') >= 0 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !(k[i] == '_' || k[i] >= 'a' && k[i] <= 'z') {
			return false
		}
	}
	_, okv := atou([]byte(v))
	return okv
}

// killLine reads "Out of memory: Kill process 1234 (java) score 900 or
// sacrifice child", "Killed process 1234 (java) total-vm:123kB,
// anon-rss:...kB, file-rss:...kB, shmem-rss:...kB[, UID:0 pgtables:...kB
// oom_score_adj:0]" and their "Memory cgroup out of memory: " forms.
func (m *machine) killLine(l msgLine, t string) {
	o := m.open.OOM
	if strings.HasPrefix(t, "Memory cgroup out of memory") && o.Constraint == "" {
		o.Constraint = "CONSTRAINT_MEMCG"
	}
	killed := strings.Contains(t, "Killed process ")
	key := "Kill process "
	if killed {
		key = "Killed process "
	}
	rest := t[strings.Index(t, key)+len(key):]
	if o.Killed == nil {
		o.Killed = &Killed{}
	}
	k := o.Killed
	if pid, err := strconv.Atoi(leadingInt(rest)); err == nil {
		k.PID = pid
	}
	if a := strings.IndexByte(rest, '('); a >= 0 {
		if b := strings.LastIndex(rest, ") "); b > a {
			k.Comm = rest[a+1 : b]
			rest = rest[b+2:]
		} else if b := strings.LastIndexByte(rest, ')'); b > a {
			k.Comm, rest = rest[a+1:b], ""
		}
	}
	if v, ok := after(rest, "score "); ok && !killed {
		k.Score, _ = strconv.Atoi(leadingInt(v))
	}
	if killed {
		for _, w := range strings.FieldsFunc(rest, func(c rune) bool { return c == ',' || c == ' ' }) {
			name, v, ok := strings.Cut(w, ":")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(strings.TrimSuffix(v, "kB"), 10, 64)
			if err != nil {
				continue
			}
			if k.Counters == nil {
				k.Counters = map[string]uint64{}
			}
			k.Counters[name] = n
		}
		m.open.Lines.Last = l.n
		m.close()
	}
}
