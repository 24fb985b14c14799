package corpus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeScenario(t *testing.T, dir, name string, files map[string]string) {
	t.Helper()
	sd := filepath.Join(dir, name)
	if err := os.MkdirAll(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(sd, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A new scenario gets all four files; -check then passes, and fails on a
// changed byte; a userspace-only scenario is left alone.
func TestUpdateAndCheck(t *testing.T) {
	input, err := os.ReadFile("../../oracle/testdata/03-loadbalancer-local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeScenario(t, dir, "new", map[string]string{"input.yaml": string(input), "args": "# x\n--node-name=node1\n--node-ip=192.168.0.2\n"})
	writeScenario(t, dir, "us-only", map[string]string{"input.yaml": string(input), "args": "", "userspace.txt": "x\n"})
	scs, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) != 2 || len(scs[0].Files) != 4 || len(scs[1].Files) != 0 {
		t.Fatalf("scenarios/files: %d %v %v", len(scs), scs[0].Files, scs[1].Files)
	}
	for _, sc := range scs {
		g, err := Generate(sc, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Write(sc, g); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "us-only", "iptables.txt")); err == nil {
		t.Fatal("userspace-only scenario got iptables.txt")
	}
	scs, _ = Load(dir, []string{"new"})
	g, _ := Generate(scs[0], false)
	if ms, err := Check(scs[0], g, 10); err != nil || len(ms) != 0 {
		t.Fatalf("check after update: %v %v", err, ms)
	}
	p := filepath.Join(dir, "new", "nft.txt")
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), "0x00004000", "0x00008000", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	ms, err := Check(scs[0], g, 10)
	if err != nil || len(ms) != 1 || ms[0].File != "nft.txt" || !strings.Contains(ms[0].Diff, "0x00008000") {
		t.Fatalf("check after a change: %v %+v", err, ms)
	}
}
