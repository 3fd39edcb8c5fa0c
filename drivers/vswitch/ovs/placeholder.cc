namespace corch { class DriverRegistry; } namespace corch::drivers::ovs { void registerDriver(DriverRegistry&) {} }
