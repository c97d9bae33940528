"""Write-back to the EHR through the transactional outbox."""
