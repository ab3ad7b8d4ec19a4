"""Heat demand: buildings' annual demand and peak, hourly profiles, weather years, heat density, regions."""
