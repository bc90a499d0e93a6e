package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// DefaultDockerEndpoints are the Docker engine API sockets tried when
// DOCKER_HOST names none: docker's, then podman's Docker-compatible service
// (`podman system service`).
var DefaultDockerEndpoints = []string{
	"/var/run/docker.sock",
	"/run/podman/podman.sock",
}

const (
	dockerTimeout = time.Second
	// dockerMaxNames bounds the cache of answers, names and "no such
	// container" alike; past it the cache starts afresh.
	dockerMaxNames = 4096
)

// Docker names containers through the Docker engine API over its unix
// socket (GET /containers/json filtered by id), the one request fragscope needs: a
// few lines of net/http, where the docker client module would bring
// hundreds of packages. It is safe for concurrent use; requests run one at
// a time.
type Docker struct {
	endpoints []string
	timeout   time.Duration
	refresh   time.Duration
	now       func() time.Time

	mu      sync.Mutex
	names   map[string]dockerName
	next    time.Time // no request before this, after a failure
	backoff time.Duration
	clients map[string]*http.Client
	err     error
	calls   int
}

type dockerName struct {
	name string
	ok   bool // the engine knows the id
}

// NewDocker returns a client for the engine at endpoint ("unix:///path" or a
// socket path); empty means $DOCKER_HOST when it is a unix socket, else
// DefaultDockerEndpoints. Nothing connects until the first lookup.
func NewDocker(endpoint string) *Docker {
	eps := DefaultDockerEndpoints
	if endpoint == "" {
		if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
			endpoint = h
		}
	}
	if endpoint != "" {
		eps = []string{socketPath(endpoint)}
	}
	return &Docker{
		endpoints: eps,
		timeout:   dockerTimeout,
		refresh:   criRefresh,
		now:       time.Now,
		names:     map[string]dockerName{},
		clients:   map[string]*http.Client{},
	}
}

// Name returns the name of the container with the given id ("web", without
// docker's leading slash); ok is false when no engine socket exists, the
// engine does not know the id, or it failed to answer within 1 s (then Err
// says why, and engines are left alone for 10 s to 5 min). Answers are
// cached, "no such container" too: call it when a cgroup is first seen.
func (d *Docker) Name(ctx context.Context, id string) (name string, ok bool) {
	if id == "" {
		return "", false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, hit := d.names[id]; hit {
		return n.name, n.ok
	}
	if d.now().Before(d.next) {
		return "", false
	}
	n, err := d.inspectLocked(ctx, id)
	d.err = err
	switch {
	case err == nil:
		d.backoff = 0
		if len(d.names) >= dockerMaxNames {
			d.names = map[string]dockerName{}
		}
		d.names[id] = n
	case errors.Is(err, ErrNoDocker):
		d.backoff = 0
		d.next = d.now().Add(d.refresh)
	default:
		d.backoff = min(max(2*d.backoff, d.refresh), criMaxBackoff)
		d.next = d.now().Add(d.backoff)
	}
	return n.name, n.ok
}

// ErrNoDocker is wrapped by Docker.Err when no engine socket exists.
var ErrNoDocker = errors.New("no Docker engine socket")

// Err returns why the last lookup failed or was skipped, nil after an answer.
func (d *Docker) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *Docker) inspectLocked(ctx context.Context, id string) (dockerName, error) {
	var errs []error
	found := false
	for _, sock := range d.endpoints {
		if !isSocket(sock) {
			continue
		}
		found = true
		n, err := d.inspect(ctx, sock, id)
		if err == nil && n.ok {
			return n, nil
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if !found {
		return dockerName{}, fmt.Errorf("%w at %s", ErrNoDocker, strings.Join(d.endpoints, ", "))
	}
	if len(errs) > 0 {
		return dockerName{}, errors.Join(errs...)
	}
	return dockerName{}, nil // every engine answered: not theirs
}

func (d *Docker) inspect(ctx context.Context, sock, id string) (dockerName, error) {
	c := d.clients[sock]
	if c == nil {
		c = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var dl net.Dialer
				return dl.DialContext(ctx, "unix", sock)
			},
			MaxIdleConns: 1,
		}}
		d.clients[sock] = c
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	// The list, filtered by id, not GET /containers/{id}/json: the list
	// reads the engine's lock-free view of its containers, while inspect
	// waits for the container's lock, which a start holds until it ends,
	// and a start that fails under a memory limit can take seconds to.
	// Unversioned: every engine serves it as its own version; "Id" and
	// "Names" have not changed since API 1.0.
	filter := url.QueryEscape(`{"id":["` + id + `"]}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/containers/json?all=1&filters="+filter, nil)
	if err != nil {
		return dockerName{}, err
	}
	d.calls++
	resp, err := c.Do(req)
	if err != nil {
		c.CloseIdleConnections()
		return dockerName{}, fmt.Errorf("docker engine %s: %w", sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return dockerName{}, fmt.Errorf("docker engine %s: GET /containers/json: %s: %s", sock, resp.Status, strings.TrimSpace(string(b)))
	}
	var list []struct {
		ID    string   `json:"Id"`
		Names []string `json:"Names"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&list); err != nil {
		return dockerName{}, fmt.Errorf("docker engine %s: container %s: %w", sock, id, err)
	}
	// The id filter matches prefixes too: only the exact id is this
	// cgroup's container. Names lists a linked container's aliases after
	// its own name ("/web", "/app/web"): the first without a second slash.
	for _, c := range list {
		if c.ID != id {
			continue
		}
		for _, n := range c.Names {
			if n = strings.TrimPrefix(n, "/"); !strings.Contains(n, "/") {
				return dockerName{name: n, ok: true}, nil
			}
		}
		return dockerName{ok: true}, nil
	}
	return dockerName{}, nil // the engine answered: not its container
}
