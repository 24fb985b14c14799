package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// nsPrefix starts every network namespace this package creates:
// s2re-<pid>-<n><role>, so a sweep can tell stale ones (dead pid) from a
// concurrent run's.
const nsPrefix = "s2re-"

const cmdTimeout = 30 * time.Second

var nsSeq atomic.Int64

// run runs a command with a bounded time and returns its combined output.
func run(stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func mustRun(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	out, err := run(stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// inNS runs a command inside network namespace ns.
func inNS(ns, stdin string, name string, args ...string) (string, error) {
	return run(stdin, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

func mustInNS(t *testing.T, ns, stdin string, name string, args ...string) string {
	t.Helper()
	out, err := inNS(ns, stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sysctl writes /proc/sys values inside ns (kernel defaults of a fresh
// namespace otherwise apply).
func sysctl(t *testing.T, ns string, kv ...string) {
	t.Helper()
	var script strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&script, "echo %s > /proc/sys/%s && ", kv[i+1], strings.ReplaceAll(kv[i], ".", "/"))
	}
	script.WriteString("true")
	mustInNS(t, ns, "", "sh", "-c", script.String())
}

// newNS creates a namespace that is deleted (with every process left in it)
// when the test ends, also on failure.
func newNS(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("%s%d-%d%s", nsPrefix, os.Getpid(), nsSeq.Add(1), role)
	mustRun(t, "", "ip", "netns", "add", name)
	t.Cleanup(func() { deleteNS(name) })
	mustRun(t, "", "ip", "-n", name, "link", "set", "lo", "up")
	// No IPv6 duplicate address detection: addresses are usable at once.
	sysctl(t, name, "net.ipv6.conf.all.accept_dad", "0", "net.ipv6.conf.default.accept_dad", "0")
	return name
}

// deleteNS kills the processes still in ns (only helpers this package
// started live there) by pid and deletes it.
func deleteNS(name string) {
	if out, err := run("", "ip", "netns", "pids", name); err == nil {
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_, _ = run("", "ip", "netns", "del", name)
}

// sweepStaleNamespaces removes namespaces left by earlier runs of this
// package that died without cleaning up (their pid no longer exists).
func sweepStaleNamespaces(t *testing.T) {
	out, err := run("", "ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		rest := strings.TrimPrefix(f[0], nsPrefix)
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			t.Logf("removing stale namespace %s", f[0])
			deleteNS(f[0])
		}
	}
}

// helperCmd prepares the test binary to run as a helper inside ns.
func helperCmd(ctx context.Context, ns, role string, spec any) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+role, specEnv+"="+string(js))
	// ip netns exec execs the helper in place: the pid is the helper's. It
	// dies with us if the test process is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	return cmd, nil
}

// startServer starts a pod's servers and waits until they listen. The test
// stops them by pid at the end.
func startServer(t *testing.T, ns string, spec serverSpec) {
	t.Helper()
	spec.MaxLifeSec = 600
	cmd, err := helperCmd(context.Background(), ns, "server", spec)
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("server %s in %s: %v %s", spec.ID, ns, err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("server %s in %s not ready after 15s: %s", spec.ID, ns, stderr.String())
	}
}

// runClient runs one batch of connections from ns and returns their outcomes.
func runClientIn(ns string, spec clientSpec) ([]attempt, error) {
	if spec.Parallel < 1 {
		spec.Parallel = 1
	}
	rounds := (spec.Count + spec.Parallel - 1) / spec.Parallel
	limit := time.Duration(rounds*spec.TimeoutMs)*time.Millisecond + 20*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd, err := helperCmd(ctx, ns, "client", spec)
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("client in %s: %v: %s", ns, err, stderr.String())
	}
	var res []attempt
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("client output %q: %v", out, err)
	}
	return res, nil
}
