/* A container's network namespace, as podman or a CNI plugin prepared it
 * (a veth with the container's address), joined the way Kata Containers
 * does: a tap beside the veth and two tc mirred redirects, so every frame
 * that arrives on the veth goes to the VM's NIC and back. The guest then
 * takes the veth's MAC, address and gateway (a NET frame), and the container
 * is reachable at its own IP, published ports included. The monitor joins
 * the namespace itself, so the VMM it forks opens the tap there. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oci/oci.h"

extern char **environ;

static int run_tc(char *const argv[], char *err, size_t errlen)
{
	pid_t pid;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawnp(&pid, "tc", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	int st = 1;
	if (rc == 0)
		waitpid(pid, &st, 0);
	if (rc || !WIFEXITED(st) || WEXITSTATUS(st)) {
		snprintf(err, errlen, "tc %s on %s failed%s", argv[1], argv[4],
			 rc ? ": install iproute2 (Debian package)" : "");
		return -1;
	}
	return 0;
}

/* Everything that arrives on from leaves through to. */
static int redirect(const char *from, const char *to, char *err, size_t errlen)
{
	char *qdisc[] = {"tc", "qdisc", "add", "dev", (char *)from, "ingress", NULL};
	char *filter[] = {"tc",	   "filter",   "add",	 "dev",	   (char *)from, "parent",
			  "ffff:", "protocol", "all",	 "u32",	   "match",	 "u8",
			  "0",	   "0",	       "action", "mirred", "egress",	 "redirect",
			  "dev",   (char *)to, NULL};
	return run_tc(qdisc, err, errlen) || run_tc(filter, err, errlen) ? -1 : 0;
}

static int link_up(int s, const char *name, int mtu)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (mtu > 0) {
		ifr.ifr_mtu = mtu;
		ioctl(s, SIOCSIFMTU, &ifr);
	}
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return -1;
	ifr.ifr_flags |= IFF_UP;
	return ioctl(s, SIOCSIFFLAGS, &ifr);
}

int netns_make_tap(int mtu, char *err, size_t errlen)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", NETNS_TAP);
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = fd < 0 || s < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0 ||
			 ioctl(fd, TUNSETPERSIST, 1) < 0 || link_up(s, NETNS_TAP, mtu) < 0
		     ? -1
		     : 0;
	if (rc)
		snprintf(err, errlen, "tap %s in the container's network namespace: %s", NETNS_TAP,
			 strerror(errno));
	if (fd >= 0)
		close(fd);
	if (s >= 0)
		close(s);
	return rc;
}

/* The default route's gateway from /proc/net/route (this namespace's). */
static void default_gateway(const char *ifname, char *gw, size_t len)
{
	FILE *f = fopen("/proc/net/route", "re");
	char line[256], name[IFNAMSIZ + 1];
	unsigned dst, gate;
	snprintf(gw, len, "0.0.0.0");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%16s %x %x", name, &dst, &gate) == 3 && dst == 0 &&
		    !strcmp(name, ifname)) {
			struct in_addr a = {.s_addr = gate};
			inet_ntop(AF_INET, &a, gw, (socklen_t)len);
			break;
		}
	if (f)
		fclose(f);
}

int netns_attach(const char *path, struct oci_guest_net *g, char *err, size_t errlen)
{
	int nfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nfd < 0 || setns(nfd, CLONE_NEWNET) < 0) {
		snprintf(err, errlen, "network namespace %s: %s", path, strerror(errno));
		if (nfd >= 0)
			close(nfd);
		return -1;
	}
	close(nfd);
	/* the interface the client configured: the first IPv4 one but lo */
	struct ifaddrs *ifs, *i;
	memset(g, 0, sizeof(*g));
	if (getifaddrs(&ifs) < 0) {
		snprintf(err, errlen, "getifaddrs: %s", strerror(errno));
		return -1;
	}
	for (i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    !(i->ifa_flags & IFF_LOOPBACK) && strcmp(i->ifa_name, NETNS_TAP))
			break;
	if (!i) {
		freeifaddrs(ifs);
		g->none = true; /* a namespace with no address: nothing to reach */
		return 0;
	}
	char ifname[IFNAMSIZ];
	snprintf(ifname, sizeof(ifname), "%s", i->ifa_name);
	struct sockaddr_in *a = (struct sockaddr_in *)i->ifa_addr;
	struct sockaddr_in *m = (struct sockaddr_in *)i->ifa_netmask;
	inet_ntop(AF_INET, &a->sin_addr, g->ip, sizeof(g->ip));
	g->prefix = m ? __builtin_popcount(m->sin_addr.s_addr) : 32;
	freeifaddrs(ifs);
	default_gateway(ifname, g->gw, sizeof(g->gw));
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	/* ifr is a union: the MTU first, then the address */
	int ok = s >= 0 && ioctl(s, SIOCGIFMTU, &ifr) == 0;
	g->mtu = ifr.ifr_mtu;
	if (!ok || ioctl(s, SIOCGIFHWADDR, &ifr) < 0) {
		snprintf(err, errlen, "interface %s: %s", ifname, strerror(errno));
		if (s >= 0)
			close(s);
		return -1;
	}
	const unsigned char *h = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
	snprintf(g->mac, sizeof(g->mac), "%02x:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3],
		 h[4], h[5]);
	close(s);
	/* frames in on the veth go out to the VM and the other way round */
	if (netns_make_tap(g->mtu, err, errlen) || redirect(ifname, NETNS_TAP, err, errlen) ||
	    redirect(NETNS_TAP, ifname, err, errlen))
		return -1;
	return 0;
}
