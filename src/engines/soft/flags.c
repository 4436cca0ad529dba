/* Lazy arithmetic flags: the interpreter records the last flag-setting
 * operation (kind, size, operands, result) and derives CF/PF/AF/ZF/SF/OF only
 * when something reads them. Most results are overwritten before anyone looks. */
#include "engines/soft/soft.h"

bool parity(uint8_t v)
{
	return !__builtin_parity(v);
}

static uint64_t lazy_flags(struct soft_cpu *c)
{
	int size = c->lf_size;
	uint64_t m = mask_of(size), sign = 1ull << (size * 8 - 1);
	uint64_t a = c->lf_a & m, b = c->lf_b & m, r = c->lf_res & m;
	uint64_t f = 0;

	switch (c->lf_op) {
	case LF_ADD:
		f |= r < a ? FL_CF : 0;
		f |= ((a ^ r) & (b ^ r) & sign) ? FL_OF : 0;
		f |= (a ^ b ^ r) & FL_AF;
		break;
	case LF_ADC: /* carry-in was 1 */
		f |= r <= a ? FL_CF : 0;
		f |= ((a ^ r) & (b ^ r) & sign) ? FL_OF : 0;
		f |= (a ^ b ^ r) & FL_AF;
		break;
	case LF_SUB:
		f |= a < b ? FL_CF : 0;
		f |= ((a ^ b) & (a ^ r) & sign) ? FL_OF : 0;
		f |= (a ^ b ^ r) & FL_AF;
		break;
	case LF_SBB: /* borrow-in was 1 */
		f |= a <= b ? FL_CF : 0;
		f |= ((a ^ b) & (a ^ r) & sign) ? FL_OF : 0;
		f |= (a ^ b ^ r) & FL_AF;
		break;
	case LF_LOGIC:
		break;
	case LF_INC:
		f |= c->fl & FL_CF;
		f |= r == sign ? FL_OF : 0;
		f |= (r & 0xf) == 0 ? FL_AF : 0;
		break;
	case LF_DEC:
		f |= c->fl & FL_CF;
		f |= a == sign ? FL_OF : 0;
		f |= (r & 0xf) == 0xf ? FL_AF : 0;
		break;
	case LF_SHL: {
		uint64_t n = c->lf_b, cf = n <= (uint64_t)size * 8 ? (a >> (size * 8 - n)) & 1 : 0;
		f |= cf ? FL_CF : 0;
		f |= (!!(r & sign) ^ cf) ? FL_OF : 0;
		break;
	}
	case LF_SHR:
		f |= (a >> (c->lf_b - 1)) & 1 ? FL_CF : 0;
		f |= (a & sign) ? FL_OF : 0;
		break;
	case LF_SAR: {
		int sh = 64 - size * 8;
		uint64_t n = c->lf_b - 1 > 63 ? 63 : c->lf_b - 1;
		f |= ((uint64_t)((int64_t)(a << sh) >> sh) >> n) & 1 ? FL_CF : 0;
		break;
	}
	case LF_MUL:
		f |= c->lf_a ? FL_CF | FL_OF : 0;
		break;
	}
	f |= r == 0 ? FL_ZF : 0;
	f |= (r & sign) ? FL_SF : 0;
	f |= parity((uint8_t)r) ? FL_PF : 0;
	return f;
}

uint64_t get_flags(struct soft_cpu *c)
{
	if (c->lf_op != LF_NONE) {
		c->fl = (c->fl & ~(uint64_t)FL_ARITH) | lazy_flags(c);
		c->lf_op = LF_NONE;
	}
	return c->fl | RFLAGS_FIXED;
}

void set_flags(struct soft_cpu *c, uint64_t fl, uint64_t mask)
{
	get_flags(c);
	c->fl = (c->fl & ~mask) | (fl & mask);
}

/* Condition code cc (the low nibble of Jcc/SETcc/CMOVcc). */
bool cond(struct soft_cpu *c, unsigned cc)
{
	bool r;

	/* Fast paths for the common compare-and-branch patterns. */
	if (c->lf_op == LF_SUB && (cc >> 1) != 0 && (cc >> 1) != 5 && (cc >> 1) != 4) {
		uint64_t m = mask_of(c->lf_size), a = c->lf_a & m, b = c->lf_b & m;
		int sh = 64 - c->lf_size * 8;
		int64_t sa = (int64_t)(a << sh) >> sh, sb = (int64_t)(b << sh) >> sh;
		switch (cc >> 1) {
		case 1:
			r = a < b;
			break;
		case 2:
			r = a == b;
			break;
		case 3:
			r = a <= b;
			break;
		case 6:
			r = sa < sb;
			break;
		default:
			r = sa <= sb;
			break;
		}
		return r ^ (cc & 1);
	}
	if (c->lf_op != LF_NONE && (cc >> 1) != 5) {
		/* ZF and SF come from the result for every lazy operation, and
		 * logic operations clear CF and OF */
		int bits = c->lf_size * 8;
		uint64_t res = c->lf_res & mask_of(c->lf_size);
		bool z = res == 0, sf = (res >> (bits - 1)) & 1;
		switch (cc >> 1) {
		case 2:
			return z ^ (cc & 1);
		case 4:
			return sf ^ (cc & 1);
		}
		if (c->lf_op == LF_LOGIC) {
			switch (cc >> 1) {
			case 0:
			case 1:
				return cc & 1;
			case 3:
				return z ^ (cc & 1);
			case 6:
				return sf ^ (cc & 1);
			default:
				return (z || sf) ^ (cc & 1);
			}
		}
	}
	uint64_t f = get_flags(c);
	switch (cc >> 1) {
	case 0:
		r = f & FL_OF;
		break;
	case 1:
		r = f & FL_CF;
		break;
	case 2:
		r = f & FL_ZF;
		break;
	case 3:
		r = f & (FL_CF | FL_ZF);
		break;
	case 4:
		r = f & FL_SF;
		break;
	case 5:
		r = f & FL_PF;
		break;
	case 6:
		r = !!(f & FL_SF) != !!(f & FL_OF);
		break;
	default:
		r = (f & FL_ZF) || (!!(f & FL_SF) != !!(f & FL_OF));
		break;
	}
	return r ^ (cc & 1);
}
