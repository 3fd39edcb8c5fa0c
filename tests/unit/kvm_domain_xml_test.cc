// Unit tests of the kvm driver's pure part (drivers/compute/kvm/domain_xml.h): engine settings
// and their refusals, port MACs, and the libvirt XML of a domain (the whole text for a direct
// kernel boot with pinning, vhost-user with shared memory, disk images, escaping). No libvirt.
#define BOOST_TEST_MODULE kvm_domain_xml
#include <boost/test/unit_test.hpp>

#include "compute/kvm/domain_xml.h"

namespace corch {
std::ostream& operator<<(std::ostream& os, ErrorCode code) { return os << codeName(code); }
}  // namespace corch

using namespace corch;
using namespace corch::drivers::kvm;

namespace {

SfSpec bridgeSpec() {
  SfSpec sf;
  sf.instance = "corch-g1-br";
  sf.image = "/srv/images/bridge-vm";
  sf.memory_mb = 128;
  sf.cpus = {2, 3};
  sf.log_path = "/var/log/corch/g1-br.log";
  sf.ports = {{"1", "in", "tap-a", PortTechnology::Tap, "02:00:00:00:00:01"},
              {"2", "out", "tap-b", PortTechnology::Tap, ""}};
  return sf;
}

const char* kBridgeEngine =
    R"({"vcpus": 2, "kernel": "vmlinuz", "initrd": "initrd.img", "cmdline": "console=ttyS0 quiet"})";

}  // namespace

BOOST_AUTO_TEST_CASE(engine_defaults_and_values) {
  auto none = parseEngine("");
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(none->vcpus == 1u);
  BOOST_TEST(none->disk_format == "qcow2");
  BOOST_TEST(none->shutdown_timeout.count() == 3000);
  auto e = parseEngine(R"({"vcpus": 4, "disk-format": "raw", "shutdown-timeout": 500})");
  BOOST_REQUIRE(e.ok());
  BOOST_TEST(e->vcpus == 4u);
  BOOST_TEST(e->disk_format == "raw");
  BOOST_TEST(e->shutdown_timeout.count() == 500);
}

BOOST_AUTO_TEST_CASE(engine_refusals_name_the_key) {
  struct Case {
    const char* json;
    const char* key;
  };
  for (const Case& c :
       {Case{R"({"bogus": 1})", "engine/bogus"}, Case{R"({"vcpus": 0})", "engine/vcpus"},
        Case{R"({"vcpus": "2"})", "engine/vcpus"},
        Case{R"({"disk-format": "vmdk"})", "engine/disk-format"},
        Case{R"({"initrd": "initrd.img"})", "engine/initrd"},
        Case{R"({"shutdown-timeout": -1})", "engine/shutdown-timeout"}}) {
    auto r = parseEngine(c.json);
    BOOST_REQUIRE_MESSAGE(!r.ok(), c.json);
    BOOST_TEST(r.error().code() == ErrorCode::InvalidArgument);
    BOOST_TEST(r.error().message().find(c.key) != std::string::npos, r.error().message());
  }
}

BOOST_AUTO_TEST_CASE(port_macs_are_given_or_stable) {
  SfSpec sf = bridgeSpec();
  BOOST_TEST(portMac(sf.instance, sf.ports[0]) == "02:00:00:00:00:01");
  const std::string derived = portMac(sf.instance, sf.ports[1]);
  BOOST_TEST(derived.size() == 17u);
  BOOST_TEST(derived.substr(0, 3) == "02:");  // locally administered, unicast
  BOOST_TEST(portMac(sf.instance, sf.ports[1]) == derived);
  BOOST_TEST(portMac("corch-g2-br", sf.ports[1]) != derived);
  SfPortBinding other = sf.ports[1];
  other.port_id = "3";
  BOOST_TEST(portMac(sf.instance, other) != derived);
}

BOOST_AUTO_TEST_CASE(direct_kernel_boot_domain) {
  SfSpec sf = bridgeSpec();
  auto engine = parseEngine(kBridgeEngine);
  BOOST_REQUIRE(engine.ok());
  auto config = domainConfig(sf, *engine, "qemu", "", "");
  BOOST_REQUIRE(config.ok());
  const std::string mac_b = portMac(sf.instance, sf.ports[1]);
  const std::string expected =
      R"(<domain type='qemu'>
  <name>corch-g1-br</name>
  <memory unit='MiB'>128</memory>
  <vcpu placement='static'>2</vcpu>
  <cputune>
    <vcpupin vcpu='0' cpuset='2'/>
    <vcpupin vcpu='1' cpuset='3'/>
    <emulatorpin cpuset='2,3'/>
  </cputune>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>/srv/images/bridge-vm/vmlinuz</kernel>
    <initrd>/srv/images/bridge-vm/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <interface type='ethernet'><mac address='02:00:00:00:00:01'/><target dev='tap-a' managed='no'/><model type='virtio'/></interface>
    <interface type='ethernet'><mac address=')" +
      mac_b +
      R"('/><target dev='tap-b' managed='no'/><model type='virtio'/></interface>
    <serial type='file'>
      <source path='/var/log/corch/g1-br.log' append='on'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
)";
  BOOST_TEST(domainXml(*config) == expected);
}

BOOST_AUTO_TEST_CASE(vhost_user_needs_shared_memory) {
  SfSpec sf = bridgeSpec();
  sf.cpus = {};
  sf.ports[1].technology = PortTechnology::VhostUser;
  sf.ports[1].ifname = "/run/corch/g1-br/vhu1.sock";
  auto config = domainConfig(sf, *parseEngine(kBridgeEngine), "kvm", "/usr/bin/qemu", "pc");
  BOOST_REQUIRE(config.ok());
  const std::string xml = domainXml(*config);
  BOOST_TEST(xml.find("<domain type='kvm'>") != std::string::npos);
  BOOST_TEST(xml.find("<cputune>") == std::string::npos);
  BOOST_TEST(xml.find("<source type='memfd'/>\n    <access mode='shared'/>") != std::string::npos,
             xml);
  BOOST_TEST(
      xml.find("<interface type='vhostuser'><mac address='" + portMac(sf.instance, sf.ports[1]) +
               "'/><source type='unix' path='/run/corch/g1-br/vhu1.sock' "
               "mode='server'/><model type='virtio'/></interface>") != std::string::npos,
      xml);
  BOOST_TEST(xml.find("<type arch='x86_64' machine='pc'>") != std::string::npos);
  BOOST_TEST(xml.find("<emulator>/usr/bin/qemu</emulator>") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(disk_image_and_escaping) {
  SfSpec sf = bridgeSpec();
  sf.image = "/srv/a&b/<vm>'.raw";
  sf.memory_mb = 0;
  auto config = domainConfig(sf, *parseEngine(R"({"disk-format": "raw"})"), "qemu", "", "");
  BOOST_REQUIRE(config.ok());
  const std::string xml = domainXml(*config);
  BOOST_TEST(xml.find("<memory unit='MiB'>128</memory>") != std::string::npos);
  BOOST_TEST(xml.find("<driver name='qemu' type='raw'/>") != std::string::npos);
  BOOST_TEST(xml.find("<source file='/srv/a&amp;b/&lt;vm&gt;&apos;.raw'/>") != std::string::npos,
             xml);
  BOOST_TEST(xml.find("<boot dev='hd'/>") != std::string::npos);
  BOOST_TEST(xml.find("<kernel>") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(refused_configurations) {
  SfSpec sf = bridgeSpec();
  sf.ports[0].technology = PortTechnology::Veth;
  auto veth = domainConfig(sf, *parseEngine(kBridgeEngine), "qemu", "", "");
  BOOST_REQUIRE(!veth.ok());
  BOOST_TEST(veth.error().code() == ErrorCode::Unsupported);
  sf = bridgeSpec();
  auto climbing =
      domainConfig(sf, *parseEngine(R"({"kernel": "../../etc/passwd"})"), "qemu", "", "");
  BOOST_REQUIRE(!climbing.ok());
  BOOST_TEST(climbing.error().message().find("engine/kernel") != std::string::npos);
  sf.image = "";
  auto nothing = domainConfig(sf, *parseEngine(""), "qemu", "", "");
  BOOST_REQUIRE(!nothing.ok());
  BOOST_TEST(nothing.error().code() == ErrorCode::InvalidArgument);
}
