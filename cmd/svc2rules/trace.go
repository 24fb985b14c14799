package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/internal/cli"
	"github.com/svc2rules/svc2rules/internal/trace"
)

func init() { subcommands = append(subcommands, newTraceCommand) }

func newTraceCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	o := cli.DefaultCompileOptions()
	var format, src, dst, proto, from, iif string
	var rules []string
	cmd := &cobra.Command{
		Use:   "trace --src IP --dst IP:PORT [--proto tcp|udp|sctp] [--from pod|node|external] (-f PATH | --rules FILE) [flags]",
		Short: "Follow a packet through a node's rules: each chain and rule it matches, the verdict, masquerading",
		Long: `trace follows the first packet of a new connection through the rules of one node, as the
kernel does: nat PREROUTING (or OUTPUT for traffic the node sends), routing, filter INPUT or
FORWARD, POSTROUTING; nftables base chains by hook and priority with their sets, maps and
verdict maps; IPVS virtual servers. It prints every chain and rule the packet matches, the
verdict (DNAT to endpoints with their probabilities, REJECT, DROP, ACCEPT, no match) and
whether the packet is masqueraded.

The rules are either compiled from manifests (-f, with the compile flags: --backend, --node-name,
--node-ip, --cluster-cidr, ...) or read from files with --rules: what a real node prints with
iptables-save, nft list ruleset, ipset save and ipvsadm -S -n, or svc2rules' own output.
trace interprets the rule text itself, so it checks the rules, not the manifests.

With --rules, give the node's addresses with --node-ip / --node-addresses (what "addrtype LOCAL"
and "fib ... type local" match); addresses the rules name as node addresses are used too.`,
		Example: `  svc2rules trace -f manifests/ --node-name node1 --node-ip 192.168.0.10 --cluster-cidr 10.244.0.0/16 \
      --src 10.244.1.5 --dst 10.96.0.10:80 --from pod
  svc2rules trace -f manifests/ -b nft --node-name node1 --node-ip 192.168.0.10 --src 203.0.113.7 --dst 192.168.0.10:30080
  iptables-save > node.rules; svc2rules trace --rules node.rules --node-ip 192.168.0.10 --src 203.0.113.7 --dst 203.0.113.100:443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return &cli.UsageError{Err: fmt.Errorf("-o must be text or json, not %q", format)}
			}
			if src == "" || dst == "" {
				return &cli.UsageError{Err: errors.New("give --src IP and --dst IP:PORT")}
			}
			srcAddr, sport, err := trace.ParseHostOptionalPort(src)
			if err != nil {
				return &cli.UsageError{Err: fmt.Errorf("--src: %v", err)}
			}
			dstAddr, dport, err := trace.ParseHostPort(dst)
			if err != nil {
				return &cli.UsageError{Err: fmt.Errorf("--dst: %v", err)}
			}
			switch strings.ToLower(proto) {
			case "tcp", "udp", "sctp":
			default:
				return &cli.UsageError{Err: fmt.Errorf("--proto must be tcp, udp or sctp, not %q", proto)}
			}
			switch from {
			case "", trace.FromPod, trace.FromNode, trace.FromExternal:
			default:
				return &cli.UsageError{Err: fmt.Errorf("--from must be pod, node or external, not %q", from)}
			}
			if srcAddr.Is4() != dstAddr.Is4() {
				return &cli.UsageError{Err: fmt.Errorf("--src %s and --dst %s are of different IP families", srcAddr, dstAddr)}
			}
			if err := o.ApplyConfigFile(cmd.Flags()); err != nil {
				return err
			}
			res, err := trace.Run(trace.RunOptions{
				Query: trace.Query{
					Src: srcAddr, SrcPort: sport, Dst: dstAddr, DstPort: dport,
					Proto: strings.ToLower(proto), From: from, InIface: iif,
				},
				Compile: o,
				Rules:   rules,
				Stdin:   stdin,
			})
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := trace.Write(&buf, format, res); err != nil {
				return err
			}
			_, err = stdout.Write(buf.Bytes())
			return err
		},
	}
	fs := cmd.Flags()
	all := pflag.NewFlagSet("compile", pflag.ContinueOnError)
	o.AddFlags(all)
	all.VisitAll(func(f *pflag.Flag) {
		if f.Name != "output" {
			fs.AddFlag(f)
		}
	})
	fs.StringVarP(&format, "output", "o", "text", "output format: text or json")
	fs.StringVar(&src, "src", "", "source address of the packet (IP or IP:PORT)")
	fs.StringVar(&dst, "dst", "", "destination IP:PORT ([IPv6]:PORT)")
	fs.StringVar(&proto, "proto", "tcp", "protocol: tcp, udp or sctp")
	fs.StringVar(&from, "from", "", "where the packet comes from: pod (a pod on this node), node (the node itself) or external (default: node if --src is a node address, else external)")
	fs.StringVar(&iif, "iif", "", "interface the packet comes in on (for interface-based local-traffic detection: --detect-local-mode BridgeInterface / InterfaceNamePrefix)")
	fs.StringArrayVar(&rules, "rules", nil, "a file holding a node's rules (iptables-save, nft list ruleset, ipset save, ipvsadm -S -n, or svc2rules output; - for stdin); repeatable")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(trace.Formats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("from", cobra.FixedCompletions([]string{"pod", "node", "external"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("proto", cobra.FixedCompletions([]string{"tcp", "udp", "sctp"}, cobra.ShellCompDirectiveNoFileComp))
	_ = stderr
	return cmd
}
