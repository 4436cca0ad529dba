# Command line: version, help, usage errors, engine selection messages.
run_vm cli-version --version
expect "cli: --version" 0 "^popek [0-9]+\.[0-9]+"
run_vm cli-help help
expect "cli: help lists run options" 0 "--kernel FILE"
POPEK_IMAGES=$TMP/no-images run_vm cli-noargs run
expect_err "cli: run without --kernel and without an image says how to get one" 64 "run 'make image'"
run_vm cli-badmem run --kernel /dev/null --mem 12Q
expect_err "cli: malformed --mem" 64 "not a size"
run_vm cli-badcpus run --kernel /dev/null --cpus 0
expect_err "cli: --cpus 0" 64 "1 to 64"
run_vm cli-badengine run --kernel /dev/null --engine vmware
expect_err "cli: unknown engine" 64 "choose kvm, soft or auto"
run_vm cli-badcmd frobnicate
expect_err "cli: unknown command" 64 "unknown command"
