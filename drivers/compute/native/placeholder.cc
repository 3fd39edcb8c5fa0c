namespace corch { class DriverRegistry; } namespace corch::drivers::native { void registerDriver(DriverRegistry&) {} }
