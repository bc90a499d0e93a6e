package bench

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"
)

// A real line from 6.18 (a Go program: many threads, times summed over all).
const statLine = "4242 (fragscope) S 4200 4242 4200 34816 4242 4194560 2861 0 0 0 137 45 0 0 20 0 7 0 881234 1318404096 6520 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"

func TestParseStat(t *testing.T) {
	st, err := ParseStat(statLine)
	if err != nil {
		t.Fatal(err)
	}
	if st.Comm != "fragscope" || st.State != 'S' || st.Utime != 137 || st.Stime != 45 || st.StartTime != 881234 {
		t.Errorf("ParseStat = %+v", st)
	}
	if st.CPUTicks() != 182 {
		t.Errorf("CPUTicks = %d, want 182", st.CPUTicks())
	}
}

func TestParseStatHostileComm(t *testing.T) {
	// comm may hold spaces and ')' : fields count from the last ')'.
	line := strings.Replace(statLine, "(fragscope)", "(a) b (c) 1 2)", 1)
	st, err := ParseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.Comm != "a) b (c) 1 2" || st.Utime != 137 || st.Stime != 45 {
		t.Errorf("ParseStat = %+v", st)
	}
}

func TestParseStatErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"4242 fragscope S 1 2 3",
		"4242 (fragscope) S 4200 4242",
		strings.Replace(statLine, " 137 45 ", " 137 x ", 1),
	} {
		if _, err := ParseStat(in); err == nil {
			t.Errorf("ParseStat(%q): no error", in)
		}
	}
}

const statusText = `Name:	fragscope
Umask:	0022
State:	S (sleeping)
Tgid:	4242
VmPeak:	 1287504 kB
VmSize:	 1287504 kB
VmLck:	       0 kB
VmHWM:	   31240 kB
VmRSS:	   26080 kB
RssAnon:	   12000 kB
Threads:	7
`

func TestParseStatus(t *testing.T) {
	st, err := ParseStatus(statusText)
	if err != nil {
		t.Fatal(err)
	}
	if st.VmHWM != 31240*1024 || st.VmRSS != 26080*1024 {
		t.Errorf("ParseStatus = %+v", st)
	}
}

func TestParseStatusErrors(t *testing.T) {
	kthread := "Name:\tkworker/0:1\nState:\tI (idle)\nThreads:\t1\n"
	for _, in := range []string{
		kthread,
		strings.Replace(statusText, "VmRSS:\t   26080 kB\n", "", 1),
		strings.Replace(statusText, "31240 kB", "31240 MB", 1),
		strings.Replace(statusText, "31240 kB", "x kB", 1),
	} {
		if _, err := ParseStatus(in); err == nil {
			t.Errorf("ParseStatus(%q): no error", in)
		}
	}
}

func TestReadSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no procfs")
	}
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.State == 0 || st.StartTime == 0 {
		t.Errorf("ReadStat(self) = %+v", st)
	}
	ss, err := ReadStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if ss.VmHWM == 0 || ss.VmRSS == 0 || ss.VmRSS > ss.VmHWM {
		t.Errorf("ReadStatus(self) = %+v", ss)
	}
	if hz := ClockTicks(); hz == 0 {
		t.Errorf("ClockTicks = 0")
	}
}

func TestClockTicksFromAuxv(t *testing.T) {
	aux := func(pairs ...uint64) []byte {
		b := make([]byte, 8*len(pairs))
		for i, v := range pairs {
			binary.NativeEndian.PutUint64(b[8*i:], v)
		}
		return b
	}
	cases := []struct {
		in   []byte
		want uint64
	}{
		{aux(6, 4096, 17, 100, 0, 0), 100}, // AT_PAGESZ, AT_CLKTCK, AT_NULL
		{aux(6, 4096, 0, 0, 17, 250), 0},   // after AT_NULL: ignored
		{aux(6, 4096), 0},                  // none
		{aux(17, 1000)[:12], 0},            // truncated entry
		{nil, 0},
	}
	for i, c := range cases {
		if got := ClockTicksFromAuxv(c.in); got != c.want {
			t.Errorf("case %d: ClockTicksFromAuxv = %d, want %d", i, got, c.want)
		}
	}
}

func TestParsePSITotal(t *testing.T) {
	const cpu = "some avg10=85.83 avg60=75.93 avg300=45.69 total=231317991\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	d, err := ParsePSITotal(cpu)
	if err != nil || d != 231317991*time.Microsecond {
		t.Errorf("ParsePSITotal = %v, %v", d, err)
	}
	for _, in := range []string{"", "full total=5\n", "some avg10=1.00\n", "some total=x\n"} {
		if _, err := ParsePSITotal(in); err == nil {
			t.Errorf("ParsePSITotal(%q): no error", in)
		}
	}
}

func TestParseIO(t *testing.T) {
	const in = "rchar: 4292\nwchar: 1234567\nsyscr: 9\nsyscw: 3\nread_bytes: 0\nwrite_bytes: 409600\ncancelled_write_bytes: 0\n"
	io, err := ParseIO(in)
	if err != nil {
		t.Fatal(err)
	}
	if io.WChar != 1234567 || io.WriteBytes != 409600 {
		t.Errorf("ParseIO = %+v", io)
	}
	for _, bad := range []string{"", "wchar: 1\n", "wchar: x\nwrite_bytes: 1\n"} {
		if _, err := ParseIO(bad); err == nil {
			t.Errorf("ParseIO(%q): no error", bad)
		}
	}
}
