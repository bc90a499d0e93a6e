// Package privs checks, before anything is loaded, that the process holds
// the capabilities BPF tracing needs, and names every one that is missing.
package privs
