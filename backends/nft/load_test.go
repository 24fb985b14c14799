package nft

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// TestLoadWithNFT loads both views of a set of plans with the host's nft
// into a fresh network namespace each: the manifests of TestViewsAgree in
// both families and 120 random plans (FuzzRender's generator).
// It needs root, ip and nft, and is skipped otherwise (or with -short).
// The golden scenarios are loaded by e2e/golden_test.go.
func TestLoadWithNFT(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	ns := fmt.Sprintf("svc2rules-nft-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	load := func(t *testing.T, name, script string) {
		t.Helper()
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
		cmd.Stdin = bytes.NewBufferString(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: nft -f: %v\n%s", name, err, out)
		}
		if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "flush", "ruleset").CombinedOutput(); err != nil {
			t.Fatalf("nft flush ruleset: %v\n%s", err, out)
		}
	}

	for _, family := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		plan := testPlan(t, family, "KubeProxyNFTablesLocalhostNodePorts=true", scenarioManifests)
		for _, view := range []View{ViewDump, ViewTransaction} {
			load(t, fmt.Sprintf("scenario/%s/%s", family, view), render(t, plan, testSettings(t, family, view)))
		}
	}
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 120; i++ {
		data := make([]byte, 40+rnd.Intn(200))
		rnd.Read(data)
		plan, s := randomPlan(data)
		for _, view := range []View{ViewDump, ViewTransaction} {
			s.View = view
			load(t, fmt.Sprintf("random %d (%x)/%s", i, data, view), render(t, plan, s))
		}
	}
}
