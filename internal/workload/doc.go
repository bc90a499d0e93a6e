// Package workload holds allocation workloads with a known pattern, shared
// by the privileged tests and the QEMU guest workload (fsworkload).
package workload
