# popek — build, test, run.  `make` builds build/popek and the test guests.
CC      ?= cc
VERSION := 0.1.0
LIBS    := -ljson-c -lzstd -lz -llzma -lxxhash -lseccomp -lslirp -lpthread
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
BASE    := -std=c17 -D_GNU_SOURCE -Isrc -Iinclude -DPOPEK_VERSION='"$(VERSION)"' -MMD -MP -pthread
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
TSAN    := -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan

SRCS    := $(shell find src -name '*.c' | sort)
LIBSRCS := $(filter-out src/cli/main.c,$(SRCS))
OBJS    := $(SRCS:%.c=build/obj/%.o)
SANOBJS := $(SRCS:%.c=build/san/%.o)
TSANOBJS := $(SRCS:%.c=build/tsan/%.o)
UNIT    := $(wildcard tests/unit/test_*.c)
# Unit tests with threads of their own, also run under TSan (35-tsan.sh).
TSANUNIT := test_intc_lapic test_intc_smp test_soft_cpu test_virtio_blk test_virtio_console \
	    test_platform_stop test_machine_pause test_loop test_console_input test_virtio_net \
	    test_policy_ring test_virtio_vsock

all: build/popek guests

build/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(BASE) $(WARN) $(CFLAGS) -c $< -o $@

build/san/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(BASE) $(WARN) -O1 -g $(SAN) -c $< -o $@

build/popek: $(OBJS)
	$(CC) $(CFLAGS) -pthread $^ -o $@ $(LIBS)

# The same sources with clang, so both compilers stay warning-free.
build/clang/%.o: %.c
	@mkdir -p $(@D)
	clang $(BASE) $(WARN) -O2 -c $< -o $@

clang-check: $(SRCS:%.c=build/clang/%.o)

build/popek-san: $(SANOBJS)
	$(CC) $(SAN) -pthread $^ -o $@ $(LIBS)

# ThreadSanitizer cannot share objects with ASan, so it has its own object dir.
build/tsan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(BASE) $(WARN) -O1 -g $(TSAN) -c $< -o $@

build/popek-tsan: $(TSANOBJS)
	$(CC) $(TSAN) -pthread $^ -o $@ $(LIBS)

build/tsan-tests/%: tests/unit/%.c $(filter-out build/tsan/src/cli/main.o,$(TSANOBJS))
	@mkdir -p $(@D)
	$(CC) $(BASE) $(WARN) -O1 -g $(TSAN) $(filter %.c %.o,$^) -o $@ $(LIBS) -lcmocka

tsan: build/popek-tsan $(TSANUNIT:%=build/tsan-tests/%)

# Unit tests link against every object but the CLI entry point, sanitized.
build/tests/%: tests/unit/%.c $(filter-out build/san/src/cli/main.o,$(SANOBJS))
	@mkdir -p $(@D)
	$(CC) $(BASE) $(WARN) -O1 -g $(SAN) $(filter %.c %.o,$^) -o $@ $(LIBS) -lcmocka

guests:
	$(MAKE) -C guests

unit: $(UNIT:tests/unit/%.c=build/tests/%)

test: all build/popek-san tsan unit clang-check format-check image build/cpudiff
	tests/run.sh

# Boot the default guest (Debian's kernel + busybox) on the best engine.
run: all image
	build/popek run

# Differential CPU tester: the soft engine against the host CPU.
build/cpudiff: tests/cpu-diff/cpudiff.c $(filter-out build/obj/src/cli/main.o,$(OBJS))
	$(CC) $(BASE) $(WARN) $(CFLAGS) $(filter %.c %.o,$^) -o $@ $(LIBS)

cpu-diff: build/cpudiff
	build/cpudiff -n 20000

fuzz-cpu: build/cpudiff
	build/cpudiff -n 5000000 -s $$(date +%s)

# The default guest (Debian kernel + busybox initramfs) in images/; see docs/images.md.
image:
	scripts/mkimage.sh

fuzz:
	$(MAKE) -C tests/fuzz

# Every fuzz target for 10 M executions from the in-tree corpus, which is
# then minimized; prints a table (tests/fuzz/campaign.sh; hours, not minutes).
fuzz-campaign: fuzz
	tests/fuzz/campaign.sh

CFILES = $$(git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'guests/*.[ch]' 'include/*.h')

format:
	clang-format -i $(CFILES)

# Every C file follows .clang-format (part of make test).
format-check:
	@bad=$$(for f in $(CFILES); do clang-format "$$f" | cmp -s - "$$f" || echo "$$f"; done); \
	[ -z "$$bad" ] || { echo "not clang-formatted (run make format): $$bad"; exit 1; }

clean:
	rm -rf build

.PHONY: image all guests unit tsan test run fuzz fuzz-campaign format format-check clean clang-check cpu-diff fuzz-cpu
-include $(shell find build -name '*.d' 2>/dev/null)

# popek-oci: the OCI runtime is `popek oci ...`; build/popek-oci is a link that
# selects it by name. The guest agent is a static Linux program that goes into
# the default image's initramfs (scripts/mkimage.sh), so `make image` needs it.
AGENT_SRCS := guests/agent/agent.c src/oci/frame.c src/oci/proto.c

build/popek-oci: build/popek
	ln -sf popek $@

build/popek-agent: $(AGENT_SRCS) src/oci/frame.h src/oci/oci.h
	@mkdir -p $(@D)
	$(CC) $(BASE) $(WARN) -O2 -static $(AGENT_SRCS) -o $@

all: build/popek-oci build/popek-agent
image: build/popek-agent
