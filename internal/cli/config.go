package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// kubeProxyConfiguration is the part of kubeproxy.config.k8s.io/v1alpha1
// KubeProxyConfiguration that changes rules. Field names are kube-proxy's.
type kubeProxyConfiguration struct {
	APIVersion       string          `json:"apiVersion"`
	Kind             string          `json:"kind"`
	FeatureGates     map[string]bool `json:"featureGates"`
	HostnameOverride string          `json:"hostnameOverride"`
	BindAddress      string          `json:"bindAddress"`
	Mode             string          `json:"mode"`
	IPTables         struct {
		MasqueradeBit      *int32 `json:"masqueradeBit"`
		MasqueradeAll      bool   `json:"masqueradeAll"`
		LocalhostNodePorts *bool  `json:"localhostNodePorts"`
	} `json:"iptables"`
	IPVS struct {
		Scheduler    string   `json:"scheduler"`
		ExcludeCIDRs []string `json:"excludeCIDRs"`
	} `json:"ipvs"`
	NFTables struct {
		MasqueradeBit *int32 `json:"masqueradeBit"`
		MasqueradeAll bool   `json:"masqueradeAll"`
	} `json:"nftables"`
	DetectLocalMode string `json:"detectLocalMode"`
	DetectLocal     struct {
		BridgeInterface     string `json:"bridgeInterface"`
		InterfaceNamePrefix string `json:"interfaceNamePrefix"`
	} `json:"detectLocal"`
	ClusterCIDR       string   `json:"clusterCIDR"`
	PortRange         string   `json:"portRange"`
	NodePortAddresses []string `json:"nodePortAddresses"`
	Conntrack         struct {
		TCPBeLiberal bool `json:"tcpBeLiberal"`
	} `json:"conntrack"`
}

// ApplyConfigFile reads --config and sets every option it holds that was not
// given on the command line (kube-proxy: flags override the file).
func (o *CompileOptions) ApplyConfigFile(fs *pflag.FlagSet) error {
	if o.ConfigFile == "" {
		return nil
	}
	data, err := os.ReadFile(o.ConfigFile)
	if err != nil {
		return usageErr("--config: %v", err)
	}
	var c kubeProxyConfiguration
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		// Unknown fields (logging, clientConnection, ...) are legal in a
		// KubeProxyConfiguration; only a malformed file is an error.
		if err := yaml.Unmarshal(data, &c); err != nil {
			return usageErr("--config %s: %v", o.ConfigFile, err)
		}
	}
	if c.Kind != "" && c.Kind != "KubeProxyConfiguration" {
		return usageErr("--config %s: kind is %q, want KubeProxyConfiguration", o.ConfigFile, c.Kind)
	}
	set := func(flag string, apply func()) {
		if !fs.Changed(flag) {
			apply()
		}
	}
	if c.HostnameOverride != "" {
		set("node-name", func() { o.NodeName = c.HostnameOverride })
	}
	if c.BindAddress != "" && c.BindAddress != "0.0.0.0" && c.BindAddress != "::" {
		set("node-ip", func() { o.NodeIPs = []string{c.BindAddress} })
	}
	switch c.Mode {
	case "":
	case "iptables", "ipvs", "userspace":
		set("backend", func() { o.Backend = c.Mode })
	case "nftables":
		set("backend", func() { o.Backend = "nft" })
	default:
		return usageErr("--config %s: unsupported mode %q", o.ConfigFile, c.Mode)
	}
	masqBit, masqAll := c.IPTables.MasqueradeBit, c.IPTables.MasqueradeAll
	if o.Backend == "nft" {
		masqBit, masqAll = c.NFTables.MasqueradeBit, c.NFTables.MasqueradeAll
	}
	if masqBit != nil {
		set("masquerade-bit", func() { o.MasqueradeBit = int(*masqBit) })
	}
	if masqAll {
		set("masquerade-all", func() { o.MasqueradeAll = true })
	}
	if c.IPTables.LocalhostNodePorts != nil {
		set("localhost-nodeports", func() { o.LocalhostNodePorts = *c.IPTables.LocalhostNodePorts })
	}
	if c.IPVS.Scheduler != "" {
		set("ipvs-scheduler", func() { o.IPVSScheduler = c.IPVS.Scheduler })
	}
	if len(c.IPVS.ExcludeCIDRs) > 0 {
		set("ipvs-exclude-cidrs", func() { o.IPVSExcludeCIDRs = c.IPVS.ExcludeCIDRs })
	}
	if c.DetectLocalMode != "" {
		set("detect-local-mode", func() { o.DetectLocalMode = c.DetectLocalMode })
	}
	if c.DetectLocal.BridgeInterface != "" {
		set("pod-bridge-interface", func() { o.PodBridgeInterface = c.DetectLocal.BridgeInterface })
	}
	if c.DetectLocal.InterfaceNamePrefix != "" {
		set("pod-interface-name-prefix", func() { o.PodInterfaceNamePrefix = c.DetectLocal.InterfaceNamePrefix })
	}
	if c.ClusterCIDR != "" {
		set("cluster-cidr", func() { o.ClusterCIDRs = SplitComma(c.ClusterCIDR) })
	}
	if c.PortRange != "" {
		set("proxy-port-range", func() { o.ProxyPortRange = c.PortRange })
	}
	if len(c.NodePortAddresses) > 0 {
		set("nodeport-addresses", func() { o.NodePortAddresses = c.NodePortAddresses })
	}
	if c.Conntrack.TCPBeLiberal {
		set("conntrack-tcp-be-liberal", func() { o.ConntrackTCPBeLiberal = true })
	}
	if len(c.FeatureGates) > 0 && !fs.Changed("feature-gates") {
		var parts []string
		for k, v := range c.FeatureGates {
			parts = append(parts, fmt.Sprintf("%s=%t", k, v))
		}
		sortStrings(parts)
		o.FeatureGates = strings.Join(parts, ",")
	}
	return nil
}

// SplitComma splits a comma-separated list, dropping blanks.
func SplitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
