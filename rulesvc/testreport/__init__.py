"""Evidence files of compliance test runs (HTML, XLSX, PDF) that compliance staff can file and check."""
