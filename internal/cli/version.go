package cli

import "runtime/debug"

// KubeProxyVersion is the kube-proxy release whose rules svc2rules reproduces.
const KubeProxyVersion = "v1.37.2"

// Version is the module version from the build info ("devel" for a local build).
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
