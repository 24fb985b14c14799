package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// requireEnv makes every environment skip a failure (set by .ci/run).
const requireEnv = "SVC2RULES_E2E"

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role))
	}
	// The kernel tests mostly wait on exec and netlink, not CPU: run the
	// golden load subtests 4 at a time unless -test.parallel says otherwise.
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "4")
	}
	os.Exit(m.Run())
}

// Tools the kernel tests run; nfacct is optional (see haveNFAcct).
var requiredTools = []string{"ip", "iptables-restore", "ip6tables-restore", "iptables-save", "nft", "ipset"}

var (
	envOnce    sync.Once
	envProblem string
)

// kernelEnvProblem says why the kernel tests cannot run here ("" if they can).
func kernelEnvProblem() string {
	envOnce.Do(func() {
		if os.Geteuid() != 0 {
			envProblem = "needs root to create network namespaces (run: sudo go test ./e2e/ -v)"
			return
		}
		var missing []string
		for _, tool := range requiredTools {
			if _, err := exec.LookPath(tool); err != nil {
				missing = append(missing, tool)
			}
		}
		if len(missing) > 0 {
			envProblem = fmt.Sprintf("missing tools %s (apt-get install -y iptables nftables ipset nfacct iproute2)", strings.Join(missing, ", "))
			return
		}
		probe := fmt.Sprintf("%s%d-probe", nsPrefix, os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
			envProblem = fmt.Sprintf("cannot create a network namespace: %v: %s", err, strings.TrimSpace(string(out)))
			return
		}
		_ = exec.Command("ip", "netns", "del", probe).Run()
	})
	return envProblem
}

// needKernel skips (or, with SVC2RULES_E2E=require, fails) t when the kernel
// tests cannot run here.
func needKernel(t *testing.T) {
	t.Helper()
	if p := kernelEnvProblem(); p != "" {
		if os.Getenv(requireEnv) == "require" {
			t.Fatalf("e2e kernel tests required (%s=require) but cannot run: %s", requireEnv, p)
		}
		t.Skipf("e2e kernel tests skipped: %s", p)
	}
}

// TestKernel is the single entry point of the kernel tests, so that outside
// root the package reports one skip line.
func TestKernel(t *testing.T) {
	needKernel(t)
	sweepStaleNamespaces(t)
	t.Run("golden-load", testGoldenLoad)
	t.Run("traffic", testTraffic)
}
