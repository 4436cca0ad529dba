#include "devices/disk_format.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* One row per header the probe functions of QEMU's block drivers accept:
 * the magic bytes and where they sit. */
static const struct {
	const char *driver;
	unsigned offset, len;
	const char *magic;
} formats[] = {
    {"qcow2", 0, 8, "QFI\xfb\0\0\0\x02"},
    {"qcow2", 0, 8, "QFI\xfb\0\0\0\x03"},
    {"qcow", 0, 8, "QFI\xfb\0\0\0\x01"},
    {"qed", 0, 4, "QED\0"},
    {"vmdk", 0, 4, "KDMV"},
    {"vmdk", 0, 21, "# Disk DescriptorFile"},
    {"vdi", 0x40, 4, "\x7f\x10\xda\xbe"}, /* 0xbeda107f, little-endian */
    {"vhdx", 0, 8, "vhdxfile"},
    {"vpc", 0, 8, "conectix"},
    {"parallels", 0, 16, "WithoutFreeSpace"},
    {"parallels", 0, 16, "WithouFreSpacExt"},
    {"bochs", 0, 22, "Bochs Virtual HD Image"},
    {"luks", 0, 6, "LUKS\xba\xbe"},
};

const char *disk_format_probe(const uint8_t *head, size_t len)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (formats[i].offset + formats[i].len <= len &&
		    !memcmp(head + formats[i].offset, formats[i].magic, formats[i].len))
			return formats[i].driver;
	return NULL;
}

const char *disk_format_detect(const char *path)
{
	uint8_t head[DISK_FORMAT_HEAD];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = pread(fd, head, sizeof(head), 0);
	close(fd);
	return n > 0 ? disk_format_probe(head, (size_t)n) : NULL;
}
