package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests drive the command exactly as a user does (arguments, stdin,
// stdout, stderr, exit status, files) through run().

const clusterIPService = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  clusterIP: 10.96.0.10
  ports:
  - name: http
    port: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: demo
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http
  port: 8080
endpoints:
- addresses: ["10.244.1.5"]
`

type result struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompileFileAndStdinGiveTheSameRules(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "svc.yaml", clusterIPService)
	fromFile := runCmd(t, "", "compile", "-f", f)
	fromStdin := runCmd(t, clusterIPService, "compile", "-f", "-")
	if fromFile.code != 0 || fromStdin.code != 0 {
		t.Fatalf("exit %d / %d, stderr %q / %q", fromFile.code, fromStdin.code, fromFile.stderr, fromStdin.stderr)
	}
	if fromFile.stdout != fromStdin.stdout {
		t.Errorf("file and stdin outputs differ")
	}
	for _, want := range []string{
		`-A KUBE-SERVICES -m comment --comment "demo/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j KUBE-SVC-`,
		"-j DNAT --to-destination 10.244.1.5:8080",
		":INPUT ACCEPT [0:0]",
	} {
		if !strings.Contains(fromFile.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestCompileRestoreView(t *testing.T) {
	r := runCmd(t, clusterIPService, "compile", "-f", "-", "--iptables-view", "restore")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "*filter\n:KUBE-SERVICES - [0:0]\n") || strings.Contains(r.stdout, ":INPUT") {
		t.Errorf("restore view should be kube-proxy's payload without built-in chains:\n%s", r.stdout)
	}
}

func TestCompileDirectoryRecursiveAndSkippedKinds(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a/svc.yaml", clusterIPService)
	writeFile(t, dir, "config.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-y\n")
	writeFile(t, dir, "notes.txt", "not a manifest")

	flat := runCmd(t, "", "compile", "-f", dir)
	if flat.code != 0 {
		t.Fatalf("exit %d: %s", flat.code, flat.stderr)
	}
	if strings.Contains(flat.stdout, "demo/web") {
		t.Errorf("without -R the subdirectory must not be read")
	}
	if strings.Count(flat.stderr, "ConfigMap") != 1 || !strings.Contains(flat.stderr, "skipped 2 object(s) of kind v1/ConfigMap") {
		t.Errorf("want one note for the two ConfigMaps, got %q", flat.stderr)
	}
	rec := runCmd(t, "", "compile", "-R", "-f", dir)
	if rec.code != 0 || !strings.Contains(rec.stdout, "demo/web:http") {
		t.Errorf("with -R the service must be compiled (exit %d): %s", rec.code, rec.stderr)
	}
}

func TestCompileErrorsNameFileObjectAndLine(t *testing.T) {
	bad := strings.Replace(clusterIPService, "port: 80\n", "port: 80\n    protocol: ICMP\n", 1)
	cases := []struct {
		name, input string
		want        []string
	}{
		{"bad protocol", bad, []string{"svc.yaml:1", "Service demo/web", "spec.ports[0].protocol", "ICMP"}},
		{"bad yaml", "apiVersion: v1\nkind: Service\nmetadata: [\n", []string{"svc.yaml:1", "invalid YAML"}},
		{"wrong type", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports: 80\n", []string{"svc.yaml:1", "Service web", "spec.ports"}},
		{"bad cluster IP", strings.Replace(clusterIPService, "10.96.0.10", "10.96.0.300", 1), []string{"Service demo/web", "spec.clusterIP", "10.96.0.300"}},
		{"bad endpoint IP in second document", strings.Replace(clusterIPService, "10.244.1.5", "not-an-ip", 1), []string{"svc.yaml:12 (document 2)", "EndpointSlice demo/web-1", "endpoints[0].addresses[0]"}},
		{"injection attempt in a name", strings.Replace(clusterIPService, "name: http", `name: "http\" -j ACCEPT"`, 1), []string{"Service demo/web", "spec.ports[0].name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := writeFile(t, dir, "svc.yaml", tc.input)
			out := filepath.Join(dir, "rules.txt")
			r := runCmd(t, "", "compile", "-f", f, "-o", out)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			if r.stdout != "" {
				t.Errorf("stdout must be empty on error, got %q", r.stdout)
			}
			if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("want a one-line error, got %q", r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error %q lacks %q", r.stderr, w)
				}
			}
			if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine") {
				t.Errorf("error looks like a crash: %q", r.stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("no output file may be written on error")
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("stray files left behind: %v", entries)
			}
		})
	}
}

func TestCompileOutputFileIsReplacedWhole(t *testing.T) {
	dir := t.TempDir()
	out := writeFile(t, dir, "rules.txt", "old content\n")
	r := runCmd(t, clusterIPService, "compile", "-f", "-", "-o", out)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "*filter\n") || !strings.HasSuffix(string(data), "COMMIT\n") {
		t.Errorf("output file is not a whole script: %q", data)
	}
}

// TestCompileOutputToPipeLinkAndDirectory: -o to something that is not a
// regular file writes into it and leaves it what it was (renaming the
// temporary file over /dev/null would, as root, replace the device); -o to a
// symbolic link replaces the file it names and keeps the link; -o to a
// directory is an error.
func TestCompileOutputToPipeLinkAndDirectory(t *testing.T) {
	dir := t.TempDir()

	fifo := filepath.Join(dir, "rules.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		data, _ := os.ReadFile(fifo) // blocks until the writer opens and closes it
		got <- data
	}()
	if r := runCmd(t, clusterIPService, "compile", "-f", "-", "-o", fifo); r.code != 0 {
		t.Fatalf("-o FIFO: exit %d, stderr %q", r.code, r.stderr)
	}
	select {
	case data := <-got:
		if !strings.HasPrefix(string(data), "*filter\n") || !strings.HasSuffix(string(data), "COMMIT\n") {
			t.Errorf("-o FIFO: the reader got %q", data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("-o FIFO: nothing was written to the pipe")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("-o FIFO: %s is no longer a named pipe (%v, %v)", fifo, fi.Mode(), err)
	}

	if fi, err := os.Stat("/dev/null"); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		if r := runCmd(t, clusterIPService, "compile", "-f", "-", "-o", "/dev/null"); r.code != 0 {
			t.Fatalf("-o /dev/null: exit %d, stderr %q", r.code, r.stderr)
		}
		if fi, err := os.Stat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Fatalf("-o /dev/null replaced the device: %v, %v", fi.Mode(), err)
		}
	}

	target := writeFile(t, dir, "real/rules.txt", "old content\n")
	link := filepath.Join(dir, "rules-link.txt")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, clusterIPService, "compile", "-f", "-", "-o", link); r.code != 0 {
		t.Fatalf("-o link: exit %d, stderr %q", r.code, r.stderr)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("-o link: %s is no longer a symbolic link", link)
	}
	if data, err := os.ReadFile(target); err != nil || !strings.HasPrefix(string(data), "*filter\n") {
		t.Errorf("-o link: the file it names holds %q (%v)", data, err)
	}

	r := runCmd(t, clusterIPService, "compile", "-f", "-", "-o", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "is a directory") {
		t.Errorf("-o DIR: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"compile", "-f", "-", "--backend", "pf"},
		{"compile", "-f", "-", "--ip-family", "ipv5"},
		{"compile", "-f", "-", "--node-ip", "1.2.3"},
		{"compile", "-f", "-", "--cluster-cidr", "10.0.0.0/33"},
		{"compile", "-f", "-", "--masquerade-bit", "32"},
		{"compile", "-f", "-", "--nodeport-addresses", "everything"},
		{"compile", "-f", "-", "--feature-gates", "NoSuchGate=true"},
		{"compile", "-f", "-", "--no-such-flag"},
		{"compile"},
	} {
		r := runCmd(t, clusterIPService, args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, r.code, r.stderr)
		}
		if !strings.HasPrefix(r.stderr, "svc2rules: error: ") {
			t.Errorf("%v: stderr %q", args, r.stderr)
		}
	}
}

func TestHelpShowsDefaults(t *testing.T) {
	r := runCmd(t, "", "compile", "--help")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	for _, want := range []string{`--backend string`, `(default "iptables")`, `--masquerade-bit int`, `(default 14)`, `--localhost-nodeports`, `(default true)`, `--ipvs-scheduler string`, `(default "rr")`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestVersionAndCompletion(t *testing.T) {
	v := runCmd(t, "", "version")
	if v.code != 0 || !strings.Contains(v.stdout, "kube-proxy v1.37.2") {
		t.Errorf("version: exit %d, %q", v.code, v.stdout)
	}
	c := runCmd(t, "", "completion", "bash")
	if c.code != 0 || !strings.Contains(c.stdout, "svc2rules") {
		t.Errorf("completion bash: exit %d", c.code)
	}
	comp := runCmd(t, "", "__complete", "compile", "--backend", "")
	if comp.code != 0 || !strings.Contains(comp.stdout, "nft") || !strings.Contains(comp.stdout, "ipvs") {
		t.Errorf("backend completion: %q", comp.stdout)
	}
}

func TestConfigFileAndFlagPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "kube-proxy.yaml", `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: 10.244.0.0/16
iptables:
  masqueradeBit: 0
`)
	r := runCmd(t, clusterIPService, "compile", "-f", "-", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "--or-mark 0x00000001") || !strings.Contains(r.stdout, "! -s 10.244.0.0/16 -j KUBE-MARK-MASQ") {
		t.Errorf("config file not applied:\n%s", r.stdout)
	}
	r = runCmd(t, clusterIPService, "compile", "-f", "-", "--config", cfg, "--masquerade-bit", "14")
	if !strings.Contains(r.stdout, "--or-mark 0x00004000") {
		t.Errorf("a flag must override the config file")
	}
}
