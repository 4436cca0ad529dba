#!/usr/bin/env python3
"""Write the hand-made seed inputs of every fuzz target into OUT/<target>/.

Usage: seeds.py OUT ROOT [SNAPSHOT_DIR...]
Device seeds are op programs in fuzz_util.h's encoding that do what a real
driver does (Linux's UART and i8042 probes, a virtio driver bringing a queue
up and making one request); boot seeds are small ELF images made from the
test guests' and images/vmlinux's headers (segments cut to a few hundred
bytes), and the first 16 KiB of images/vmlinuz; snapshot seeds come from
real snapshots of a tiny guest (the directories given). The campaign merges
these into tests/fuzz/corpus/, so this only runs when seeds change.
"""
import lzma
import os
import shutil
import struct
import subprocess
import sys
import zlib

OUT, ROOT = sys.argv[1], sys.argv[2]
SNAPS = sys.argv[3:]

WRITE, READ, RAM, PCI_WRITE, HOST, SNAPSHOT = range(6)
LOG2 = {1: 0, 2: 1, 4: 2, 8: 3}


def op(kind, win=0, size=1, off=0, val=0, slot=0):
    return struct.pack('<BBIQ', win << 3 | kind, LOG2[size] | slot << 2, off & 0xffffffff,
                       val & 0xffffffffffffffff)


def w(off, val, size=1, win=0):
    return op(WRITE, win, size, off, val)


def r(off, size=1, win=0):
    return op(READ, win, size, off)


def ram(gpa, data):
    data = data + bytes(-len(data) % 8)
    return b''.join(op(RAM, 0, 1, gpa + i, struct.unpack_from('<Q', data, i)[0])
                    for i in range(0, len(data), 8))


def save(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), 'wb') as f:
        f.write(data)


# --- conf1 (window given): read a register, size a BAR ---
def conf1_addr(slot, reg):
    return 0x80000000 | slot << 11 | (reg & 0xfc)


def cfg_read(win, slot, reg, size=4):
    return w(0, conf1_addr(slot, reg), 4, win) + r(4 + (reg & 3), size, win)


def cfg_write(win, slot, reg, val, size=4):
    return w(0, conf1_addr(slot, reg), 4, win) + w(4 + (reg & 3), val, size, win)


def bar_sizing(win, slot):
    p = cfg_read(win, slot, 0) + cfg_read(win, slot, 8) + cfg_read(win, slot, 0x34, 1)
    for bar in (0x10, 0x14):
        p += cfg_read(win, slot, bar) + cfg_write(win, slot, bar, 0xffffffff) + \
            cfg_read(win, slot, bar)
    p += cfg_write(win, slot, 0x10, 0xc0000000) + cfg_write(win, slot, 0x14, 0)
    return p + cfg_write(win, slot, 4, 0x6, 2)


# --- virtio modern driver over the BAR in window 0 ---
CC = dict(DFSEL=0, DF=4, GFSEL=8, GF=0xc, MSIXC=0x10, STATUS=0x14, QSEL=0x16, QSIZE=0x18,
          QMSIX=0x1a, QEN=0x1c, QDESC=0x20, QDRV=0x28, QDEV=0x30)
RINGS = 0x10000  # queue q: desc at RINGS + q * 0x4000, avail + 0x1000, used + 0x2000
QSIZE = 16


def vq(q):
    base = RINGS + q * 0x4000
    return base, base + 0x1000, base + 0x2000


def virtio_start(nq, msix=False, features_hi=1, common=0):
    p = w(common + CC['STATUS'], 0) + w(common + CC['STATUS'], 1) + w(common + CC['STATUS'], 3)
    p += w(common + CC['DFSEL'], 0, 4) + r(common + CC['DF'], 4)
    p += w(common + CC['DFSEL'], 1, 4) + r(common + CC['DF'], 4)
    p += w(common + CC['GFSEL'], 1, 4) + w(common + CC['GF'], features_hi, 4)
    p += w(common + CC['STATUS'], 0xb) + r(common + CC['STATUS'])
    if msix:
        p += w(common + CC['MSIXC'], 0, 2)
    for q in range(nq):
        d, a, u = vq(q)
        p += w(common + CC['QSEL'], q, 2) + r(common + CC['QSIZE'], 2)
        p += w(common + CC['QSIZE'], QSIZE, 2)
        p += w(common + CC['QDESC'], d, 8) + w(common + CC['QDRV'], a, 8)
        p += w(common + CC['QDEV'], u, 8)
        if msix:
            p += w(common + CC['QMSIX'], q + 1, 2)
        p += w(common + CC['QEN'], 1, 2)
    return p + w(common + CC['STATUS'], 0xf)


def chain(q, bufs, head=0):
    """RAM ops for one chain of (gpa, len, writable) at descriptor head, made available."""
    d, a, _ = vq(q)
    p = b''
    for i, (gpa, ln, wr) in enumerate(bufs):
        last = i == len(bufs) - 1
        flags = (0 if last else 1) | (2 if wr else 0)
        p += ram(d + 16 * (head + i), struct.pack('<QIHH', gpa, ln, flags, 0 if last else head + i + 1))
    return p + ram(a, struct.pack('<HHH', 0, 1, head))


def kick(q, notify=0x3000):
    return w(notify + 4 * q, q, 2)


def device_seeds():
    # UART: Linux 8250 autoconfig and init, some output, host input, snapshot.
    uart = b''.join([w(3, 0x80), w(0, 1), w(1, 0), w(3, 3), w(2, 0xc7), w(4, 0x0b), w(1, 0x0f),
                     r(5), r(2), r(6), w(7, 0x55), r(7), w(4, 0x1f), r(6), w(4, 0x0b)])
    uart += b''.join(w(0, c) for c in b'hello\n') + op(HOST, val=0x41) + r(5) + r(0) + \
        op(HOST, val=0xe000000064636261) + op(SNAPSHOT) + r(2) + r(0) + r(0)
    save('uart', 'linux-init', uart)
    # i8042 (window 0 data 0x60, window 1 command 0x64): Linux's probe.
    c, dt = 1, 0
    k = b''.join([r(0, 1, c), w(0, 0x20, 1, c), r(0, 1, dt), w(0, 0x60, 1, c), w(0, 0x65, 1, dt),
                  w(0, 0xaa, 1, c), r(0, 1, dt), w(0, 0xab, 1, c), r(0, 1, dt), w(0, 0xae, 1, c),
                  w(0, 0xff, 1, dt), r(0, 1, dt), r(0, 1, dt), w(0, 0xf2, 1, dt), r(0, 1, dt),
                  w(0, 0xf4, 1, dt), r(0, 1, dt), w(0, 0xd1, 1, c), w(0, 0xdf, 1, dt),
                  op(SNAPSHOT), w(0, 0xa7, 1, c), w(0, 0xa8, 1, c), w(0, 0xd4, 1, c),
                  w(0, 0xff, 1, dt), w(0, 0xfe, 1, c)])
    save('i8042', 'linux-probe', k)
    # CMOS: read the clock, set it (BCD and binary), NVRAM, status registers.
    reg = lambda i: w(0, i)  # noqa: E731
    cm = b''.join(reg(i) + r(1) for i in (0, 2, 4, 6, 7, 8, 9, 0x32, 0x0a, 0x0b, 0x0c, 0x0d))
    cm += reg(0x0b) + w(1, 0x82) + b''.join(reg(i) + w(1, v) for i, v in
                                           ((0, 0x30), (2, 0x59), (4, 0x23), (7, 0x31), (8, 0x12),
                                            (9, 0x99), (0x32, 0x19)))
    cm += reg(0x0b) + w(1, 0x02) + reg(9) + r(1) + reg(0x0b) + w(1, 0x86) + reg(0x0b) + \
        w(1, 0x06) + reg(0x40) + w(1, 0x5a) + reg(0x40) + r(1) + op(SNAPSHOT) + reg(4) + r(1)
    save('cmos_rtc', 'set-clock', cm)
    # ACPI PM: status, enable, control, timer; S5 power-off.
    pm = r(0, 2) + r(2, 2) + r(4, 2) + r(8, 4) + w(2, 0x121, 2) + w(0, 0xffff, 2) + r(8, 4) + \
        op(SNAPSHOT) + w(4, 5 << 10 | 1, 2) + w(4, 5 << 10 | 1 << 13 | 1, 2) + r(4, 2)
    save('acpi_pm', 'poweroff', pm)
    save('debug_exit', 'exit', r(0, 4) + w(0, 1, 4) + w(0, 0, 1) + w(2, 3, 2))
    # pvpanic: window 0 BAR, window 1 conf1.
    save('pvpanic', 'panic', r(0) + cfg_read(1, 1, 0) + bar_sizing(1, 1) + w(0, 1) + w(0, 2) + r(0))
    # virtio-rng: window 0 BAR, window 1 conf1.
    rng = bar_sizing(1, 1) + virtio_start(1) + chain(0, [(0x20000, 64, True)]) + kick(0) + \
        r(0x1000) + op(SNAPSHOT) + chain(0, [(0x20100, 4096, True)], 1)
    save('virtio_rng', 'request', rng)
    save('virtio_pci', 'bringup',
         virtio_start(1) + r(0x14) + op(SNAPSHOT) + w(0x14, 0) + r(0x14))
    # virtio_pci windows: 0 common, 1 ISR, 2 device, 3 notify.
    vp = virtio_start(1) + chain(0, [(0x20000, 16, True)]) + op(WRITE, 3, 2, 0, 0) + \
        op(READ, 1, 1, 0) + op(READ, 2, 4, 0) + op(SNAPSHOT) + w(CC['STATUS'], 0)
    save('virtio_pci', 'bringup-kick', vp)
    # MSI-X: windows 0 table, 1 PBA, 2 conf1, 3 common; find the cap at 0x40+.
    mx = b''.join(cfg_read(2, 1, o, 4) for o in (0x34, 0x40, 0x44, 0x48, 0x50, 0x60, 0x70))
    for cap in range(0x40, 0x100, 4):
        mx += cfg_write(2, 1, cap + 2, 0xc000, 2)  # enable + function mask, whichever is MSI-X
    mx += b''.join(op(WRITE, 0, 4, 16 * v + o, val) for v in range(3)
                   for o, val in ((0, 0xfee00000), (4, 0), (8, 0x40 + v), (12, 0)))
    mx += virtio_start(1, msix=True, common=0)
    mx += op(HOST, val=1) + op(READ, 1, 8, 0) + op(WRITE, 0, 4, 12, 1) + op(HOST, val=0) + \
        op(READ, 1, 8, 0) + op(WRITE, 0, 4, 12, 0) + op(SNAPSHOT)
    for cap in range(0x40, 0x100, 4):
        mx += cfg_write(2, 1, cap + 2, 0x8000, 2)
    save('msix', 'vectors', remap_common(mx, 3))
    # virtio-console: RX buffer, host input, TX of a line.
    con = bar_sizing(1, 1) + virtio_start(2) + chain(0, [(0x20000, 64, True)]) + kick(0) + \
        op(HOST, val=0x2000000000006968) + chain(1, [(0x21000, 6, False)]) + \
        ram(0x21000, b'hello\n') + kick(1) + op(SNAPSHOT) + r(0x2000, 4)
    save('virtio_console', 'rx-tx', con)
    # virtio-blk: read sector 0, write sector 1, flush, get id.
    blk = bar_sizing(1, 1) + virtio_start(1) + r(0x2000, 8) + r(0x2014, 4)
    for i, (t, sec) in enumerate(((0, 0), (1, 1), (4, 0), (8, 0))):
        hdr = 0x20000 + i * 0x100
        blk += ram(hdr, struct.pack('<IIQ', t, 0, sec))
        d, a, _ = vq(0)
        bufs = [(hdr, 16, False), (0x24000, 512, t != 1), (hdr + 0x80, 1, True)]
        for j, (gpa, ln, wr) in enumerate(bufs):
            last = j == 2
            blk += ram(d + 16 * (3 * i + j), struct.pack('<QIHH', gpa, ln, (0 if last else 1) |
                                                        (2 if wr else 0), 0 if last else 3 * i + j + 1))
        blk += ram(a + 4 + 2 * i, struct.pack('<H', 3 * i)) + ram(a, struct.pack('<HH', 0, i + 1))
        blk += kick(0)
    save('virtio_blk', 'requests', blk + op(SNAPSHOT))
    # PCI: windows 0 conf1, 1 the PCI hole. Enumerate and size every slot.
    pci = b''.join(bar_sizing(0, s) for s in range(0, 6))
    pci += cfg_write(0, 1, 0x10, 0xc0010000) + op(READ, 1, 4, 0x10000 + 0x14) + \
        op(WRITE, 1, 1, 0x10000 + 0x14, 0) + op(SNAPSHOT)
    save('pci', 'enumerate', pci)


def vsock_seeds():
    """virtio-vsock (window 0 BAR, 1 conf1): a host program's CONNECT, the
    guest's RESPONSE, data both ways, credit, shutdown, a refused REQUEST."""
    heads = {0: [], 1: [], 2: []}

    def nth_chain(q, bufs, head, n):
        """Chain bufs at descriptor head, the queue's n-th available one."""
        d, a, _ = vq(q)
        p = b''
        for i, (gpa, ln, wr) in enumerate(bufs):
            last = i == len(bufs) - 1
            flags = (0 if last else 1) | (2 if wr else 0)
            p += ram(d + 16 * (head + i), struct.pack('<QIHH', gpa, ln, flags,
                                                      0 if last else head + i + 1))
        heads[q].append(head)  # ram() writes 8-byte words: the whole ring each time
        return p + ram(a, struct.pack('<HH%dH' % n, 0, n, *heads[q]))

    def pkt(gpa, op, sport, dport, payload=b'', flags=0, cid=3):
        return ram(gpa, struct.pack('<QQIIIHHIII', cid, 2, sport, dport, len(payload), 1, op,
                                    flags, 65536, 0) + payload)
    hport = 1 << 30
    p = bar_sizing(1, 1) + virtio_start(3) + r(0x2000, 8)
    for i in range(4):  # receive buffers: header + 4 KiB each
        p += nth_chain(0, [(0x20000 + i * 0x2000, 44 + 4096, True)], i, i + 1)
    p += nth_chain(2, [(0x28000, 4, True)], 0, 1) + kick(0) + kick(2)
    p += op(HOST, val=5000 << 32)  # CONNECT 5000 on peer 0
    p += pkt(0x30000, 2, 5000, hport) + nth_chain(1, [(0x30000, 44, False)], 0, 1) + kick(1)
    p += pkt(0x30100, 5, 5000, hport, b'guest data\n') + \
        nth_chain(1, [(0x30100, 44, False), (0x3012c, 11, False)], 1, 2) + kick(1)
    p += op(HOST, val=0x41 << 32 | 1) + op(HOST, val=3)  # the host writes, then a poll
    p += pkt(0x30200, 7, 5000, hport) + nth_chain(1, [(0x30200, 44, False)], 3, 3) + kick(1)
    p += pkt(0x30300, 1, 1234, 99) + nth_chain(1, [(0x30300, 44, False)], 4, 4) + kick(1)
    p += op(HOST, val=1 << 32 | 2)  # half-close from the host
    p += pkt(0x30400, 4, 5000, hport, flags=3) + nth_chain(1, [(0x30400, 44, False)], 5, 5) + \
        kick(1) + op(HOST, val=3) + op(SNAPSHOT)  # the restore resets what is left
    save('virtio_vsock', 'connect-rw-shutdown', p)


def remap_common(prog, win):
    """virtio_start writes to window 0 (the BAR): move those ops to window win."""
    out = bytearray()
    for i in range(0, len(prog), 14):
        o = bytearray(prog[i:i + 14])
        if o[0] >> 3 == 0 and o[0] & 7 in (WRITE, READ):
            off = struct.unpack_from('<I', o, 2)[0]
            if off < 0x40:
                o[0] = win << 3 | (o[0] & 7)
        out += o
    return bytes(out)


def shrink_elf(data, keep=384):
    """ELF header + program headers + each segment cut to keep bytes; no sections."""
    is64 = data[4] == 2
    if is64:
        phoff, = struct.unpack_from('<Q', data, 32)
        phentsize, phnum = struct.unpack_from('<HH', data, 54)
    else:
        phoff, = struct.unpack_from('<I', data, 28)
        phentsize, phnum = struct.unpack_from('<HH', data, 42)
    hdr_end = phoff + phentsize * phnum
    out = bytearray(data[:hdr_end])
    if is64:
        struct.pack_into('<QHHH', out, 40, 0, out[52] | out[53] << 8, 0, 0)  # no sections
        struct.pack_into('<HHH', out, 58, 0, 0, 0)
    else:
        struct.pack_into('<I', out, 32, 0)
        struct.pack_into('<HHH', out, 46, 0, 0, 0)
    for i in range(phnum):
        at = phoff + i * phentsize
        if is64:
            ptype, flags, off, va, pa, fsz, msz, al = struct.unpack_from('<IIQQQQQQ', data, at)
        else:
            ptype, off, va, pa, fsz, msz, flags, al = struct.unpack_from('<IIIIIIII', data, at)
        n = min(fsz, keep if ptype != 4 else 4096)  # notes whole (PVH entry)
        seg = data[off:off + n]
        new_off = len(out)
        out += seg
        if is64:
            struct.pack_into('<IIQQQQQQ', out, at, ptype, flags, new_off, va, pa, n, max(msz, n), al)
        else:
            struct.pack_into('<IIIIIIII', out, at, ptype, new_off, va, pa, n, max(msz, n), flags, al)
    return bytes(out)


def boot_seeds():
    gdir = os.path.join(ROOT, 'build', 'guests')
    for g in ('hello', 'hello64', 'hello-mb', 'hello-pvh'):
        data = open(os.path.join(gdir, g + '.elf'), 'rb').read()
        small = shrink_elf(data)
        for t in ('boot', 'elf', 'multiboot'):
            save(t, g, small)
        # The multiboot header at the start of the first segment, as a flat image.
        mb = data.find(struct.pack('<I', 0x1badb002))
        if mb >= 0:
            save('multiboot', g + '-flat', data[mb & ~3:(mb & ~3) + 1024])
    # The a.out kludge: a flat image whose header says where it loads.
    kludge = struct.pack('<8I', 0x1badb002, 0x10003, (-(0x1badb002 + 0x10003)) & 0xffffffff,
                         0x100000, 0x100000, 0, 0x102000, 0x100020)
    save('multiboot', 'aout-kludge', kludge + bytes(0x20 - len(kludge)) + b'\xf4' * 64)
    save('boot', 'aout-kludge', kludge + bytes(0x20 - len(kludge)) + b'\xf4' * 64)
    vmlinux = open(os.path.join(ROOT, 'images', 'vmlinux'), 'rb').read(1 << 26)
    small = shrink_elf(vmlinux, 256)
    for t in ('boot', 'elf', 'linux'):
        save(t, 'vmlinux', small)
    bz = open(os.path.join(ROOT, 'images', 'vmlinuz'), 'rb').read(16384)
    for t in ('boot', 'linux'):
        save(t, 'bzimage-head', bz)


def bzpayload_seeds():
    # A bzImage payload as Linux's build makes it: the (here shrunken)
    # vmlinux compressed, the decompressed size appended for xz and zstd.
    elf = shrink_elf(open(os.path.join(ROOT, 'images', 'vmlinux'), 'rb').read(1 << 26), 256)
    size = struct.pack('<I', len(elf))
    gz = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    save('bzpayload', 'gzip', gz.compress(elf) + gz.flush())
    xz = lzma.compress(elf, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                       filters=[{'id': lzma.FILTER_X86}, {'id': lzma.FILTER_LZMA2, 'preset': 1}])
    save('bzpayload', 'xz', xz + size)
    if shutil.which('zstd'):
        zst = subprocess.run(['zstd', '-19', '-c'], input=elf, capture_output=True, check=True).stdout
        save('bzpayload', 'zstd', zst + size)
    save('bzpayload', 'lz4', b'\x02\x21\x4c\x18' + bytes(60) + size)
    # images/vmlinuz's setup and payload header around that xz payload.
    bz = open(os.path.join(ROOT, 'images', 'vmlinuz'), 'rb').read()
    setup = ((bz[0x1f1] or 4) + 1) * 512
    off = struct.unpack_from('<I', bz, 0x248)[0]
    head = bytearray(bz[:setup + off])
    body = xz + size
    body += bytes(-(off + len(body)) % 16)
    struct.pack_into('<I', head, 0x1f4, (off + len(body)) // 16)
    struct.pack_into('<I', head, 0x24c, len(xz) + 4)
    for t in ('boot', 'linux'):
        save(t, 'bzimage-xz', bytes(head) + body)


def snapshot_seeds():
    for i, d in enumerate(SNAPS):
        meta = open(os.path.join(d, 'snapshot.json'), 'rb').read()
        state = open(os.path.join(d, 'state.bin'), 'rb').read()
        zst = os.path.join(d, 'memory.zst')
        mem = open(zst, 'rb').read() if os.path.exists(zst) else b''
        save('snapshot', 'state-%d' % i, state)
        if len(meta) < 65536 and len(state) < 65536:
            save('snapshot_dir', 'snap-%d' % i, struct.pack('<H', len(meta)) + meta +
                 struct.pack('<H', len(state)) + state + mem)


def control_seeds():
    for n, line in enumerate((b'{"cmd":"info"}\n', b'{"cmd":"pause"}\n', b'{"cmd":"resume"}\n',
                              b'{"cmd":"stop"}\n', b'{"cmd":"stats"}\n',
                              b'{"cmd":"snapshot","dir":"/tmp/x","stop":true,"compress":false}\n',
                              b'{"cmd":"snapshot","dir":"rel"}', b'[1,2]\n', b'{"cmd":7}\n',
                              b'{"cmd":"policy"}\n',
                              b'{"cmd":"policy","text":"deny pio port 0x70\\n","file":"p"}\n',
                              b'{"cmd":"policy","text":7}\n',
                              b'{"cmd":"trace","classes":["pio","hypercall"]}\n',
                              b'{"cmd":"trace","classes":[]}\n', b'{"cmd":"trace","classes":["x"]}\n')):
        save('control', 'line-%d' % n, line)


def virtqueue_seeds():
    # fuzz_virtqueue: byte 0 = log2 size | 0x80 indirect; RAM from 0: avail at 0,
    # desc at 0x210, used at 0x1210.
    ram_ = bytearray(0x1300)
    struct.pack_into('<HHHH', ram_, 0, 0, 2, 0, 1)
    struct.pack_into('<QIHH', ram_, 0x210, 0x2000, 64, 1, 2)
    struct.pack_into('<QIHH', ram_, 0x210 + 32, 0x3000, 64, 2, 0)
    struct.pack_into('<QIHH', ram_, 0x210 + 16, 0x4000, 32, 4, 0)  # indirect table
    save('virtqueue', 'two-chains', bytes([0x84]) + bytes(ram_))


def net_frame_seeds():
    # fuzz_net_frame: a frame as a guest sends it; fuzz_policy: net rules.
    eth = b'\x52\x54\x00\x12\x34\x56' * 2
    tcp = struct.pack('>HHIIBBHHH', 40000, 25, 1, 0, 0x50, 2, 65535, 0, 0)
    ip4 = struct.pack('>BBHHHBBH4s4s', 0x45, 0, 40, 1, 0, 64, 6, 0, bytes([10, 0, 2, 15]),
                      bytes([10, 0, 2, 2]))
    save('net_frame', 'tcp4', eth + b'\x08\x00' + ip4 + tcp)
    save('net_frame', 'vlan-tcp4', eth + b'\x81\x00\x00\x05\x08\x00' + ip4 + tcp)
    frag = bytearray(ip4)
    frag[6:8] = b'\x00\x03'
    save('net_frame', 'frag4', eth + b'\x08\x00' + bytes(frag) + tcp)
    ip6 = struct.pack('>IHBB16s16s', 0x60000000, 28, 0, 64, b'\xfd' + bytes(15), bytes(15) + b'\x01')
    hop = bytes([6, 0]) + bytes(6)
    save('net_frame', 'hop-tcp6', eth + b'\x86\xdd' + ip6 + hop + tcp)
    save('net_frame', 'arp', eth + b'\x08\x06' + bytes(28))
    for n, text in enumerate((b'deny net tcp dport 25\nlimit net bytes 10M/s\n',
                              b'allow net tx nic 0 udp src 10.0.2.0/24 dst fd00::/8 sport 1-2\n',
                              b'pause net rx ethertype 0x0806 fragment proto 47 length 60-99\n')):
        save('policy', 'net-%d' % n, bytes(16) + text)


device_seeds()
vsock_seeds()
net_frame_seeds()
boot_seeds()
bzpayload_seeds()
snapshot_seeds()
control_seeds()
virtqueue_seeds()
