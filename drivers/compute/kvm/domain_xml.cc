// The kvm driver's domain description: engine settings, NICs and the libvirt XML (domain_xml.h).
// The XML is built as text: the domain is small and fixed in shape, and every value from outside
// goes through xmlEscape().
#include "domain_xml.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace corch::drivers::kvm {
namespace {

namespace fs = std::filesystem;

Error badEngine(const std::string& key, const std::string& why) {
  return Error::field(ErrorCode::InvalidArgument, "/engine/" + key, "engine/" + key + ": " + why);
}

Result<std::string> stringValue(const rapidjson::Value& v, const std::string& key) {
  if (!v.IsString()) return badEngine(key, "must be a string");
  return std::string(v.GetString(), v.GetStringLength());
}

Result<uint64_t> positiveValue(const rapidjson::Value& v, const std::string& key, uint64_t max) {
  if (!v.IsUint64() || v.GetUint64() == 0 || v.GetUint64() > max) {
    return badEngine(key, "must be a whole number from 1 to " + std::to_string(max));
  }
  return v.GetUint64();
}

// A file named by the template, inside the image folder: relative, and not climbing out of it.
Result<std::string> imageFile(const SfSpec& sf, const std::string& key, const std::string& name) {
  fs::path rel(name);
  if (rel.is_absolute() || rel.lexically_normal().string().starts_with("..")) {
    return badEngine(key, "'" + name + "' must be a path inside the image folder");
  }
  return (fs::path(sf.image) / rel).lexically_normal().string();
}

// FNV-1a: a stable hash (std::hash may differ between builds), for derived MACs.
uint64_t fnv1a(std::string_view text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// The value of attribute `name` of the start tag `tag` ("<target dev='x' managed='no'/>"),
// unescaped; empty when absent. libvirt quotes with ' but " is read too.
std::string attribute(std::string_view tag, std::string_view name) {
  for (size_t pos = tag.find(name); pos != std::string_view::npos; pos = tag.find(name, pos + 1)) {
    const size_t eq = pos + name.size();
    if (pos == 0 || (tag[pos - 1] != ' ' && tag[pos - 1] != '\t' && tag[pos - 1] != '\n') ||
        eq + 1 >= tag.size() || tag[eq] != '=' || (tag[eq + 1] != '\'' && tag[eq + 1] != '"')) {
      continue;
    }
    const size_t end = tag.find(tag[eq + 1], eq + 2);
    if (end == std::string_view::npos) return "";
    return xmlUnescape(tag.substr(eq + 2, end - eq - 2));
  }
  return "";
}

// The start tag of the first element `name` inside `block` ("<mac address='...'/>"), or empty.
std::string_view startTag(std::string_view block, std::string_view name) {
  const std::string open = "<" + std::string(name);
  for (size_t pos = block.find(open); pos != std::string_view::npos;
       pos = block.find(open, pos + 1)) {
    const size_t after = pos + open.size();
    if (after < block.size() && (block[after] == ' ' || block[after] == '>' ||
                                 block[after] == '/' || block[after] == '\n')) {
      const size_t end = block.find('>', after);
      if (end == std::string_view::npos) return {};
      return block.substr(pos, end - pos + 1);
    }
  }
  return {};
}

}  // namespace

std::string xmlUnescape(std::string_view text) {
  static const std::pair<std::string_view, char> kEntities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    bool replaced = false;
    if (text[i] == '&') {
      for (const auto& [entity, ch] : kEntities) {
        if (text.substr(i, entity.size()) == entity) {
          out += ch;
          i += entity.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += text[i++];
  }
  return out;
}

std::vector<DomainNic> nicsOfDomainXml(std::string_view xml) {
  std::vector<DomainNic> nics;
  size_t pos = 0;
  for (;;) {
    std::string_view rest = xml.substr(pos);
    std::string_view tag = startTag(rest, "interface");
    if (tag.empty()) break;
    const size_t begin = pos + static_cast<size_t>(tag.data() - rest.data());
    const size_t close = xml.find("</interface>", begin);
    const size_t end = tag.ends_with("/>")          ? begin + tag.size()
                       : close == std::string::npos ? xml.size()
                                                    : close;
    const std::string_view block = xml.substr(begin, end - begin);
    DomainNic nic;
    nic.mac = attribute(startTag(block, "mac"), "address");
    const std::string type = attribute(tag, "type");
    if (type == "ethernet") {
      nic.technology = PortTechnology::Tap;
      nic.target = attribute(startTag(block, "target"), "dev");
    } else if (type == "vhostuser") {
      nic.technology = PortTechnology::VhostUser;
      nic.target = attribute(startTag(block, "source"), "path");
    }
    nics.push_back(std::move(nic));
    pos = std::max(end, begin + tag.size());
  }
  return nics;
}

Result<EngineSettings> parseEngine(const std::string& engine_json) {
  EngineSettings s;
  if (engine_json.empty()) return s;
  rapidjson::Document doc;
  doc.Parse(engine_json.c_str(), engine_json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Error::field(ErrorCode::InvalidArgument, "/engine", "engine: must be a JSON object");
  }
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const std::string key(it->name.GetString(), it->name.GetStringLength());
    const rapidjson::Value& v = it->value;
    if (key == "vcpus") {
      auto n = positiveValue(v, key, 64);
      if (!n.ok()) return n.error();
      s.vcpus = static_cast<unsigned>(*n);
    } else if (key == "kernel" || key == "initrd" || key == "cmdline") {
      auto text = stringValue(v, key);
      if (!text.ok()) return text.error();
      (key == "kernel" ? s.kernel : key == "initrd" ? s.initrd : s.cmdline) = *text;
    } else if (key == "disk-format") {
      auto text = stringValue(v, key);
      if (!text.ok()) return text.error();
      if (*text != "qcow2" && *text != "raw") return badEngine(key, "must be \"qcow2\" or \"raw\"");
      s.disk_format = *text;
    } else if (key == "shutdown-timeout") {
      auto ms = positiveValue(v, key, 600000);
      if (!ms.ok()) return ms.error();
      s.shutdown_timeout = std::chrono::milliseconds(*ms);
    } else {
      return badEngine(key,
                       "unknown setting of the kvm driver (it knows vcpus, kernel, initrd, "
                       "cmdline, disk-format, shutdown-timeout)");
    }
  }
  if (s.kernel.empty() && !s.initrd.empty()) {
    return badEngine("initrd", "needs a kernel (engine/kernel)");
  }
  return s;
}

std::string portMac(const std::string& instance, const SfPortBinding& port) {
  if (!port.mac.empty()) return port.mac;
  uint64_t h = fnv1a(instance + "/" + port.port_id);
  char buf[18];
  // 0x02: locally administered, unicast.
  std::snprintf(buf, sizeof buf, "02:%02x:%02x:%02x:%02x:%02x", unsigned(h & 0xff),
                unsigned((h >> 8) & 0xff), unsigned((h >> 16) & 0xff), unsigned((h >> 24) & 0xff),
                unsigned((h >> 32) & 0xff));
  return buf;
}

Result<DomainNic> nicFor(const std::string& instance, const SfPortBinding& port) {
  if (port.technology != PortTechnology::Tap && port.technology != PortTechnology::VhostUser) {
    return Error(ErrorCode::Unsupported, "port " + port.port_id + " is a " +
                                             std::string(toString(port.technology)) +
                                             " port; a VM takes tap and vhost-user ports only");
  }
  if (port.ifname.empty()) {
    return Error(ErrorCode::InvalidArgument, "port " + port.port_id + " has no device to attach");
  }
  return DomainNic{port.technology, port.ifname, portMac(instance, port)};
}

Result<DomainConfig> domainConfig(const SfSpec& sf, const EngineSettings& engine,
                                  const std::string& type, const std::string& emulator,
                                  const std::string& machine) {
  DomainConfig c;
  c.name = sf.instance;
  c.type = type;
  c.emulator = emulator;
  c.machine = machine;
  c.memory_mb = sf.memory_mb > 0 ? sf.memory_mb : 128;
  c.vcpus = engine.vcpus;
  c.cpus = sf.cpus;
  c.console_log = sf.log_path;
  if (!engine.kernel.empty()) {
    auto kernel = imageFile(sf, "kernel", engine.kernel);
    if (!kernel.ok()) return kernel.error();
    c.kernel = *kernel;
    if (!engine.initrd.empty()) {
      auto initrd = imageFile(sf, "initrd", engine.initrd);
      if (!initrd.ok()) return initrd.error();
      c.initrd = *initrd;
    }
    c.cmdline = engine.cmdline;
  } else {
    if (sf.image.empty()) {
      return Error(ErrorCode::InvalidArgument,
                   "a VM needs a disk image or a kernel (engine/kernel), and function " +
                       sf.instance + " has neither");
    }
    c.disk = sf.image;
    c.disk_format = engine.disk_format;
  }
  for (const auto& port : sf.ports) {
    auto nic = nicFor(sf.instance, port);
    if (!nic.ok()) return nic.error();
    c.nics.push_back(std::move(nic).value());
  }
  return c;
}

std::string xmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string nicXml(const DomainNic& nic) {
  std::ostringstream x;
  if (nic.technology == PortTechnology::VhostUser) {
    x << "<interface type='vhostuser'>"
      << "<mac address='" << xmlEscape(nic.mac) << "'/>"
      << "<source type='unix' path='" << xmlEscape(nic.target) << "' mode='server'/>"
      << "<model type='virtio'/></interface>";
  } else {
    x << "<interface type='ethernet'>"
      << "<mac address='" << xmlEscape(nic.mac) << "'/>"
      << "<target dev='" << xmlEscape(nic.target) << "' managed='no'/>"
      << "<model type='virtio'/></interface>";
  }
  return x.str();
}

std::string domainXml(const DomainConfig& c) {
  bool vhost_user = false;
  for (const auto& nic : c.nics) vhost_user |= nic.technology == PortTechnology::VhostUser;
  std::ostringstream x;
  x << "<domain type='" << xmlEscape(c.type) << "'>\n"
    << "  <name>" << xmlEscape(c.name) << "</name>\n"
    << "  <memory unit='MiB'>" << c.memory_mb << "</memory>\n"
    << "  <vcpu placement='static'>" << c.vcpus << "</vcpu>\n";
  if (!c.cpus.empty()) {
    // vCPU i on core i (round robin when there are more vCPUs than cores); QEMU's own threads
    // share all of the function's cores.
    x << "  <cputune>\n";
    std::string all;
    for (unsigned cpu : c.cpus) all += (all.empty() ? "" : ",") + std::to_string(cpu);
    for (unsigned i = 0; i < c.vcpus; ++i) {
      x << "    <vcpupin vcpu='" << i << "' cpuset='" << c.cpus[i % c.cpus.size()] << "'/>\n";
    }
    x << "    <emulatorpin cpuset='" << all << "'/>\n"
      << "  </cputune>\n";
  }
  if (vhost_user) {
    // vhost-user hands the guest's memory to the switch: it must be shareable.
    x << "  <memoryBacking>\n    <source type='memfd'/>\n    <access mode='shared'/>\n"
      << "  </memoryBacking>\n";
  }
  x << "  <os>\n    <type arch='x86_64'"
    << (c.machine.empty() ? "" : " machine='" + xmlEscape(c.machine) + "'") << ">hvm</type>\n";
  if (!c.kernel.empty()) {
    x << "    <kernel>" << xmlEscape(c.kernel) << "</kernel>\n";
    if (!c.initrd.empty()) x << "    <initrd>" << xmlEscape(c.initrd) << "</initrd>\n";
    x << "    <cmdline>" << xmlEscape(c.cmdline) << "</cmdline>\n";
  } else {
    x << "    <boot dev='hd'/>\n";
  }
  // ACPI: the power button of graceful shutdown, and PCI hot-plug of NICs.
  x << "  </os>\n  <features>\n    <acpi/>\n  </features>\n"
    << "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n"
    << "  <on_crash>destroy</on_crash>\n  <devices>\n";
  if (!c.emulator.empty()) x << "    <emulator>" << xmlEscape(c.emulator) << "</emulator>\n";
  if (!c.disk.empty()) {
    x << "    <disk type='file' device='disk'>\n"
      << "      <driver name='qemu' type='" << xmlEscape(c.disk_format) << "'/>\n"
      << "      <source file='" << xmlEscape(c.disk) << "'/>\n"
      << "      <target dev='vda' bus='virtio'/>\n    </disk>\n";
  }
  for (const auto& nic : c.nics) x << "    " << nicXml(nic) << "\n";
  if (!c.console_log.empty()) {
    x << "    <serial type='file'>\n"
      << "      <source path='" << xmlEscape(c.console_log) << "' append='on'/>\n"
      << "      <target port='0'/>\n    </serial>\n";
  }
  // No graphics, no USB, no balloon: less to emulate, faster to boot.
  x << "    <controller type='usb' model='none'/>\n"
    << "    <memballoon model='none'/>\n  </devices>\n</domain>\n";
  return x.str();
}

}  // namespace corch::drivers::kvm
