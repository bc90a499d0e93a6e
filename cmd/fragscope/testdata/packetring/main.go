// Command packetring is the container workload of the runtime tests: it
// sets up AF_PACKET TPACKET_V3 rings of 256 KiB blocks (order-6 unmovable
// allocations charged to its cgroup) and closes them, over and over, for
// -for. Built static, it is the whole rootfs of a ctr or docker container.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/fragscope/fragscope/internal/workload"
	"golang.org/x/sys/unix"
)

func main() {
	blocks := flag.Uint("blocks", 4, "blocks per ring")
	period := flag.Duration("period", 100*time.Millisecond, "time between rings")
	d := flag.Duration("for", 10*time.Second, "how long to run")
	flag.Parse()
	n := 0
	for end := time.Now().Add(*d); time.Now().Before(end); time.Sleep(*period) {
		fd, err := workload.PacketRing(256<<10, uint32(*blocks))
		if err != nil {
			fmt.Fprintln(os.Stderr, "packetring:", err)
			os.Exit(1)
		}
		unix.Close(fd)
		n++
	}
	fmt.Printf("packetring: %d rings of %d x 256 KiB\n", n, *blocks)
}
