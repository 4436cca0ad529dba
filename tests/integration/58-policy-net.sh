# Net policy rules (docs/policy.md, class net): a malformed or undeliverable
# net rule refused before the VM starts, then the real-components scenario
# (tests/linux/policy_net_test.py): a Linux guest on user networking, host
# servers the test starts, deny by port, a rate limit, popek trace --class
# net, the canonical print and a live replacement. Soft engine.
export POPEK_RUNTIME_DIR=$TMP/run
IMAGES=$POPEK_ROOT/images

printf 'deny net tcp dport 25\nmodify net bytes 0x00\n' >"$TMP/pn-modify.policy"
run_vm pnet-modify run --net user --policy "$TMP/pn-modify.policy" --kernel "$GUESTS/hello.elf"
expect_err "policy-net: modify net is refused at parse" 64 \
	"pn-modify.policy:2:8: expected another action: net frames cannot be modified"
printf 'deny net nic 1\n' >"$TMP/pn-nic.policy"
run_vm pnet-nic run --net user --policy "$TMP/pn-nic.policy" --kernel "$GUESTS/hello.elf"
expect_err "policy-net: a rule for a NIC the VM does not have is refused" 64 \
	"this VM has no net device virtio-net1"
printf 'deny net rx vcpu 0\n' >"$TMP/pn-vcpu.policy"
run_vm pnet-vcpu run --net user --policy "$TMP/pn-vcpu.policy" --kernel "$GUESTS/hello.elf"
expect_err "policy-net: a vcpu match on received frames is refused" 64 \
	"frames the guest receives come from no vCPU"
printf 'deny net tcp dport 25\nlimit net bytes 10M/s\n' >"$TMP/pn-ok.policy"
run_vm pnet-hello run --net user --policy "$TMP/pn-ok.policy" --kernel "$GUESTS/hello.elf" --cmdline greeting=1
expect "policy-net: the rules of issue 12 as written are accepted (a test guest runs to its end)" 1 "PASS hello"

if [ ! -f "$IMAGES/vmlinux" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "policy-net" "images/ lacks the default image: run 'make image' (make test does)"
else
	timeout 500 python3 "$POPEK_ROOT/tests/linux/policy_net_test.py" "$POPEK_ROOT/build/popek" \
		"$IMAGES" "$TMP" >"$TMP/policy-net.log" 2>&1
	scenario_report "$TMP/policy-net.log" policy-net $?
fi
unset POPEK_RUNTIME_DIR
