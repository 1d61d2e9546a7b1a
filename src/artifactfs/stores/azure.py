"""The ``azure`` flavor: Azure Blob Storage and ADLS Gen2 through adlfs."""

from __future__ import annotations

from artifactfs.stores.flavor import Flavor


class AzureFlavor(Flavor):
    name = "azure"
    schemes = ("az", "abfs", "abfss")
    protocol = "az"
    module = "adlfs"
    extra = "azure"
    secret_options = frozenset({"connection_string", "account_key", "sas_token", "client_secret"})
    env_credentials = {"connection_string": "AZURE_STORAGE_CONNECTION_STRING", "account_key": "AZURE_STORAGE_KEY",
                       "sas_token": "AZURE_STORAGE_SAS_TOKEN", "client_secret": "AZURE_CLIENT_SECRET"}
    default_options = {"use_listings_cache": False}
    option_help = {
        "account_name": "storage account name",
        "account_key / sas_token / connection_string": "credentials (secret)",
        "tenant_id / client_id / client_secret": "service principal (client_secret is secret)",
    }
