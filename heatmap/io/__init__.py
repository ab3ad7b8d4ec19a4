"""Reading and writing: input files, OSM streets, synthetic towns, CSV tables, the output folder and plan files."""
