#include "devices/msix.h"

#include <string.h>

#include "snapshot/blob.h"

#define MSIX_CAP_ID	   0x11
#define MSIX_CTRL_FMASK	   0x4000
#define MSIX_CTRL_ENABLE   0x8000
#define MSIX_VECTOR_MASKED 1u

int msix_init(struct msix *x, struct pci_dev *d, unsigned nvec, unsigned bar, uint32_t table_off,
	      uint32_t pba_off, struct msi_sink sink)
{
	if (nvec == 0 || nvec > MSIX_MAX_VECTORS || bar >= PCI_NUM_BARS || (table_off & 7) ||
	    (pba_off & 7))
		return -1;
	memset(x, 0, sizeof(*x));
	x->pci = d;
	x->sink = sink;
	x->nvec = nvec;
	for (unsigned v = 0; v < nvec; v++)
		x->table[v][3] = MSIX_VECTOR_MASKED; /* reset state per PCI spec */

	uint16_t ctrl = (uint16_t)(nvec - 1);
	uint32_t t = table_off | bar, p = pba_off | bar;
	uint8_t body[12] = {MSIX_CAP_ID, 0, (uint8_t)ctrl, (uint8_t)(ctrl >> 8)};
	memcpy(&body[4], &t, 4);
	memcpy(&body[8], &p, 4);
	uint8_t wmask[12] = {0, 0, 0, (MSIX_CTRL_FMASK | MSIX_CTRL_ENABLE) >> 8};
	x->cap = pci_dev_add_cap(d, body, sizeof(body), wmask);
	return x->cap ? 0 : -1;
}

bool msix_enabled(const struct msix *x)
{
	return x->enabled;
}

static bool vector_masked(const struct msix *x, unsigned v)
{
	return x->fmask || (x->table[v][3] & MSIX_VECTOR_MASKED);
}

static void send(struct msix *x, unsigned v)
{
	uint64_t addr = (uint64_t)x->table[v][1] << 32 | x->table[v][0];
	x->sink.send(x->sink.ctx, addr, x->table[v][2]);
}

/* Deliver every pending vector that is no longer masked. */
static void flush_pending(struct msix *x)
{
	if (!x->enabled)
		return;
	for (unsigned v = 0; v < x->nvec; v++) {
		if ((x->pending >> v & 1) && !vector_masked(x, v)) {
			x->pending &= ~(1ull << v);
			send(x, v);
		}
	}
}

void msix_config_written(struct msix *x)
{
	uint16_t ctrl = pci_cfg16(x->pci, x->cap + 2);
	x->enabled = ctrl & MSIX_CTRL_ENABLE;
	x->fmask = ctrl & MSIX_CTRL_FMASK;
	flush_pending(x);
}

/* Table entries are accessed as aligned dwords or qwords (PCI spec); others are ignored. */
static bool table_access_ok(const struct msix *x, uint64_t off, unsigned size)
{
	return (size == 4 || size == 8) && !(off & (size - 1)) &&
	       off < (uint64_t)x->nvec * MSIX_ENTRY_SIZE;
}

void msix_table_read(struct msix *x, uint64_t off, void *data, unsigned size)
{
	if (!table_access_ok(x, off, size)) {
		memset(data, 0xff, size);
		return;
	}
	memcpy(data, (const uint8_t *)x->table + off, size);
}

void msix_table_write(struct msix *x, uint64_t off, const void *data, unsigned size)
{
	if (!table_access_ok(x, off, size))
		return;
	unsigned v = (unsigned)(off / MSIX_ENTRY_SIZE);
	memcpy((uint8_t *)x->table + off, data, size);
	x->table[v][3] &= MSIX_VECTOR_MASKED; /* other control bits are reserved */
	flush_pending(x);
}

void msix_pba_read(struct msix *x, uint64_t off, void *data, unsigned size)
{
	uint8_t bytes[16] = {0};
	memcpy(bytes, &x->pending, sizeof(x->pending));
	memset(data, 0, size);
	if (off < sizeof(x->pending))
		memcpy(data, bytes + off, size < sizeof(bytes) - off ? size : sizeof(bytes) - off);
}

void msix_notify(struct msix *x, unsigned vec)
{
	if (vec >= x->nvec || !x->enabled)
		return;
	if (vector_masked(x, vec))
		x->pending |= 1ull << vec;
	else
		send(x, vec);
}

void msix_save(const struct msix *x, struct blob *b)
{
	blob_put32(b, x->nvec);
	for (unsigned v = 0; v < x->nvec; v++)
		for (int i = 0; i < 4; i++)
			blob_put32(b, x->table[v][i]);
	blob_put64(b, x->pending);
}

int msix_load(struct msix *x, struct reader *r)
{
	if (rd_get32(r) != x->nvec)
		return -1;
	for (unsigned v = 0; v < x->nvec; v++) {
		for (int i = 0; i < 4; i++)
			x->table[v][i] = rd_get32(r);
		x->table[v][3] &= MSIX_VECTOR_MASKED;
	}
	uint64_t all = x->nvec == 64 ? ~0ull : (1ull << x->nvec) - 1;
	x->pending = rd_get64(r) & all;
	return r->bad ? -1 : 0;
}
