def model(clean__orders)
    return clean__orders
